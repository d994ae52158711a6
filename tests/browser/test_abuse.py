"""Issue 18's resource attacks, performed as a hostile student would: Streamlit's own websocket protocol and
upload route against a real class-mode server on 127.0.0.1 (bench/class_load.py's protocol client)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from streamlit.proto.Common_pb2 import StringArray
from streamlit.proto.WidgetStates_pb2 import WidgetState

from bench.class_load import PASSWORD, Student, proc_rss_mb, put_file, start_server
from core.data.synthetic import blank_png
from tests.browser.conftest import run_protocol

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
    from core.data.synthetic import make_pets_like

    base = tmp_path_factory.mktemp("abuse")
    data = base / "data"
    data.mkdir()
    images = make_pets_like(base / "pets" / "images", n_per_class=4)
    proc, url = start_server(data, images, extra_env={"PETLAB_OWN_CLASSES": "3", "PETLAB_OWN_PHOTOS": "5"})
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

    statuses, grown = run_protocol(attack())
    assert statuses == [413, 204, 204, 413, 413]  # 60 MB: over the file limit; 45 + 45 MB, then the tab is full
    assert grown < 300  # the 90 MB held, and the parsing of the refused ones


def test_a_small_png_of_huge_16_bit_pixels_is_refused_on_every_page_that_decodes_uploads(class_server):
    """The 0.30 MB 12000×12000 16-bit PNG on Prediction, Augmentation and own classes: 3.5 GB per decode before
    (two tabs: 1 -> 7.4 GB); now each page says why it is refused and the server's memory does not move."""
    url, pid, _ = class_server
    bomb = blank_png(12_000, 12_000)

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
    alerts = run_protocol(attack("prediction", "Upload photos (JPEG, PNG, GIF, WebP, BMP, TIFF)"))
    assert any("decoding it would take 275 MB" in a for a in alerts), alerts

    async def upload_source(student: Student) -> None:
        await student.rerun(
            [WidgetState(id=student.widgets["aug_source"].id, string_array_value=StringArray(data=["Upload"]))]
        )

    alerts = run_protocol(attack("augmentation", "Upload a photo", upload_source))
    assert any("decoding it would take 275 MB" in a for a in alerts), alerts
    assert peak_rss_mb(pid) - peak < 300


def jpeg(seed: int) -> bytes:
    from tests.core.teach.test_own_classes import noise_jpeg

    return noise_jpeg(seed)


async def add_class(student: Student, name: str) -> list[str]:
    """Type a class name and press Add class, in one rerun (as the browser sends them)."""
    states = [
        WidgetState(id=student.widgets["data_own_new"].id, string_value=name),
        WidgetState(id=student.widgets["data_own_add"].id, trigger_value=True),
    ]
    result = await student.rerun(states)
    assert not result.error, result.error
    return result.alerts


async def add_photos(student: Student, cls: str, photos: list[bytes]) -> list[str]:
    """Upload photos into the class's uploader and press Add these photos; the alerts the page shows."""
    from streamlit.proto.Common_pb2 import FileUploaderState

    infos = []
    for n, data in enumerate(photos):
        state = await student.upload(f"p{n}.jpg", data, label="Photos")
        infos.extend(state.file_uploader_state_value.uploaded_file_info)
    widget_id = student.uploaders["Photos"][0]
    assert f"data_own_files_{cls}_" in widget_id  # the key ends in a nonce: a new uploader after each add
    states = [
        WidgetState(id=widget_id, file_uploader_state_value=FileUploaderState(uploaded_file_info=infos)),
        WidgetState(id=student.widgets["data_own_save"].id, trigger_value=True),
    ]
    result = await student.rerun(states)
    assert not result.error, result.error
    return result.alerts


def test_one_tab_cannot_flood_the_disk_with_own_classes(class_server):
    """The review: 50 classes in 9 s from one tab, then a photo every 2 s, kept 24 h. With the server's
    quotas (here 3 classes, 5 photos per class) the fourth class and the sixth photo are refused in the page,
    and so is the 0.30 MB PNG of 12000×12000 16-bit pixels."""
    url, pid, data = class_server

    async def attack() -> tuple[list[list[str]], list[str], list[str], str]:
        student = await opened(url, "data")
        try:
            made = [await add_class(student, f"c{n}") for n in range(4)]
            bomb = await add_photos(student, "c2", [blank_png(12_000, 12_000)])  # the class chosen last
            alerts = await add_photos(student, "c2", [jpeg(n) for n in range(7)])
            return made, alerts, bomb, student.query
        finally:
            await student.close()

    made, alerts, bomb, query = run_protocol(attack())
    refused = [any("the most one student may make" in a for a in alerts) for alerts in made]
    assert refused == [False, False, False, True]
    assert any("Added 5 photos to c2" in a for a in alerts), alerts
    assert any("c2 has 5 photos, the most one class may hold" in a for a in alerts), alerts
    assert any("decoding it would take 275 MB" in a for a in bomb), bomb
    token = query.split("s=", 1)[1].split("&")[0]
    own = data / "students" / token / "own"
    assert sorted(p.name for p in own.iterdir()) == ["c0", "c1", "c2"]
    assert len(list((own / "c2").glob("*.jpg"))) == 5


def test_tabs_opened_by_a_script_leave_nothing_on_disk_and_are_not_counted(class_server):
    """The review's script opened 5-37 tabs a second: each left a heartbeat and a student folder for 24 h and
    the Class page counted 409 students. Thirty tabs opened, drawn and dropped now leave no file."""
    from core.teach import classroom

    url, _pid, data = class_server

    def files() -> set[str]:
        return {str(p.relative_to(data)) for p in data.rglob("*") if p.is_file() and not p.name.endswith(".log")}

    async def flood() -> int:
        opened_ok = 0
        for _batch in range(3):
            tabs = [Student(url, page="data") for _ in range(10)]
            await asyncio.gather(*(t.connect() for t in tabs))
            results = await asyncio.gather(*(t.rerun() for t in tabs))
            opened_ok += sum(1 for r in results if not r.error)
            await asyncio.gather(*(t.close() for t in tabs))
        return opened_ok

    before, counted = files(), classroom.active_sessions(data)["student"]
    assert run_protocol(flood()) == 30
    assert files() - before == set()
    assert classroom.active_sessions(data)["student"] == counted


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MB tmpfs to fill for real (skipped where this machine does not let the tests mount one:
    tests/pages/test_full_disk.py simulates the same full disk everywhere)."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()[:80]})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(folder: Path) -> None:
    """Write until the disk says no space (what a day of photos, caches and logs can do)."""
    import errno

    with open(folder / "filler.bin", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 1024**2)
                fh.flush()
        except OSError as err:
            assert err.errno == errno.ENOSPC
    for n in range(10_000):  # and the last blocks, with small files
        try:
            (folder / f"filler-{n}").write_bytes(b"\0" * 4096)
        except OSError:
            break


def test_a_really_full_disk_takes_no_page_down(small_disk, tmp_path):
    """The review filled the data folder's disk: every page of every tab failed with `No space left on
    device` from the sidebar heartbeat, the teacher's sign-in included. Here on a real full tmpfs."""
    from core.data.synthetic import make_pets_like

    data = small_disk / "data"
    data.mkdir()
    images = make_pets_like(tmp_path / "pets" / "images", n_per_class=4)
    proc, url = start_server(data, images)  # class mode, the teacher password bench.class_load.PASSWORD
    pages = ("data", "augmentation", "training", "interpretation", "layers", "prediction")

    async def visit() -> tuple[list[str], list[str], list[str], list[str]]:
        student = await opened(url, "prediction")  # the class at work: folders made, weights in place
        teacher = await opened(url, "data")
        try:
            for page in pages:
                await goto(student, page)
            await asyncio.sleep(11)  # both tabs have been open a while: their reruns now write heartbeats
            fill(small_disk)
            errors = []
            newcomer = Student(url, page="data")  # a tab opened after the disk filled
            await newcomer.connect()
            try:
                for page in pages:
                    for tab in (student, newcomer):
                        result = await goto(tab, page)
                        errors += [f"{page}: {result.error}"] if result.error else []
            finally:
                await newcomer.close()
            states = [
                WidgetState(id=teacher.widgets["auth_password"].id, string_value=PASSWORD),
                WidgetState(id=teacher.widgets["auth_sign_in"].id, trigger_value=True),
            ]
            signed = await teacher.rerun(states)
            errors += [f"sign-in: {signed.error}"] if signed.error else []
            class_page = await goto(teacher, "class")
            errors += [f"class: {class_page.error}"] if class_page.error else []
            await goto(student, "data")
            refused = await add_class(student, "my_cat")
            return errors, signed.alerts, class_page.alerts, refused
        finally:
            await student.close()
            await teacher.close()

    try:
        errors, signed, class_alerts, refused = run_protocol(visit())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert errors == []
    assert any("Signed in as the **teacher**" in a for a in signed), signed
    assert any("disk is nearly full" in a for a in class_alerts), class_alerts
    assert any("nothing new can be stored now" in a for a in refused), refused


async def goto(student: Student, page: str):
    student.page, student.page_hash = page, ""
    return await student.rerun()
