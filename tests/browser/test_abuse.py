"""Issue 18's resource attacks, performed as a hostile student would: Streamlit's own websocket protocol and
upload route against a real class-mode server on 127.0.0.1 (bench/class_load.py's protocol client)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from streamlit.proto.Common_pb2 import StringArray
from streamlit.proto.WidgetStates_pb2 import WidgetState

from bench.class_load import Student, proc_rss_mb, put_file, start_server
from tests.core.test_images import zero_png

pytestmark = pytest.mark.browser


def peak_rss_mb(pid: int) -> float:
    """The server's peak resident memory so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture(scope="module")
def class_server(tmp_path_factory):
    """A class-mode server (teacher password, no worker) on its own data folder; yields (url, pid, data)."""
    from core.synthetic import make_pets_like

    base = tmp_path_factory.mktemp("abuse")
    data = base / "data"
    data.mkdir()
    images = make_pets_like(base / "pets" / "images", n_per_class=4)
    proc, url = start_server(data, images)
    try:
        yield url, proc.pid, data
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def opened(url: str, page: str) -> Student:
    student = Student(url, page=page)
    await student.connect()
    result = await student.rerun()
    assert not result.error, result.error
    return student


def multipart_put(url: str, student: Student, file_id: str, data: bytes) -> int:
    """PUT data to /_stcore/upload_file/<the student's own session>/<any id>; the HTTP status."""
    try:
        put_file(url, f"/_stcore/upload_file/{student.session_id}/{file_id}", "x.jpg", data)
    except RuntimeError as err:
        return int(str(err).rsplit(" ", 1)[-1])
    return 204


def test_uploads_are_bounded_per_file_and_per_tab(class_server):
    """The review PUT ten 190 MB files to its own session under ids of its choosing (1.1 -> 3 GB, all accepted).
    Now a file over 50 MB is refused while it streams, and a tab holds at most 100 MB of uploads."""
    url, pid, _ = class_server

    async def attack() -> tuple[list[int], float]:
        student = await opened(url, "prediction")
        before = proc_rss_mb(pid)
        try:
            statuses = [await asyncio.to_thread(multipart_put, url, student, "big", b"\0" * (60 * 1024**2))]
            for n in range(4):
                statuses.append(await asyncio.to_thread(multipart_put, url, student, f"f{n}", b"\1" * (45 * 1024**2)))
            return statuses, proc_rss_mb(pid) - before
        finally:
            await student.close()

    statuses, grown = asyncio.run(attack())
    assert statuses == [413, 204, 204, 413, 413]  # 60 MB: over the file limit; 45 + 45 MB, then the tab is full
    assert grown < 300  # the 90 MB held, and the parsing of the refused ones


def test_a_small_png_of_huge_16_bit_pixels_is_refused_on_every_page_that_decodes_uploads(class_server):
    """The 0.30 MB 12000×12000 16-bit PNG on Prediction, Augmentation and own classes: 3.5 GB per decode before
    (two tabs: 1 -> 7.4 GB); now each page says why it is refused and the server's memory does not move."""
    url, pid, _ = class_server
    bomb = zero_png(12_000, 12_000)

    async def attack(page: str, label: str, prepare=None) -> list[str]:
        student = await opened(url, page)
        try:
            if prepare is not None:
                await prepare(student)
            widget_id, fragment = student.uploaders[label]
            state = await student.upload("scan.png", bomb, label=label)
            result = await student.rerun([state], fragment_id=fragment, auto=False)
            assert not result.error, result.error
            return result.alerts
        finally:
            await student.close()

    peak = peak_rss_mb(pid)
    alerts = asyncio.run(attack("prediction", "Upload photos (JPEG, PNG, GIF, WebP, BMP, TIFF)"))
    assert any("decoding it would take 275 MB" in a for a in alerts), alerts

    async def upload_source(student: Student) -> None:
        await student.rerun(
            [WidgetState(id=student.widgets["aug_source"].id, string_array_value=StringArray(data=["Upload"]))]
        )

    alerts = asyncio.run(attack("augmentation", "Upload a photo", upload_source))
    assert any("decoding it would take 275 MB" in a for a in alerts), alerts
    assert peak_rss_mb(pid) - peak < 300
