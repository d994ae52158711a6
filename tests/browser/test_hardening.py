"""Browser: the hardening review's attacks, tried on the real server (issue 8's "tried by hand" list)."""

import json
import threading
import time
import urllib.request

import pytest
from PIL import Image

from core.data.synthetic import make_pets_like
from tests.browser.conftest import assert_no_exception, screenshot, streamlit_server, wait_ready
from tests.core.data.test_pets import hostile_tgz, serve

pytestmark = pytest.mark.browser


def _alert_with(page, text: str) -> str:
    alert = page.locator("[data-testid='stAlert']").filter(has_text=text).first
    alert.wait_for()
    return alert.inner_text()


def test_review_attacks_get_messages_and_change_nothing(page, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    images = make_pets_like(tmp_path / "pets" / "images", n_per_class=4)
    Image.new("RGB", (8, 8)).save(images / ("a" * 34 + "!.jpg"))  # the regex review's file name
    bad = data / "runs" / "badrun"
    bad.mkdir(parents=True)
    (bad / "model.pt").write_bytes(b"w")
    config = {"dataset": "x", "stages": [{"epochs": 1, "lr_max": 1e-3}]}
    (bad / "run.json").write_text(
        json.dumps({"arch": "mobilenet_v2", "classes": ["a", "b"], "img_size": 64, "title": "t", "config": config,
                    "created": "yesterday"})
    )  # fmt: skip
    archive = hostile_tgz(tmp_path / "attack")
    http = serve(archive.parent)
    with streamlit_server(data, images) as url:
        page.goto(url)
        wait_ready(page)
        page.get_by_role("heading", name="3 · Explore").wait_for()

        # 1. a hostile .tgz by URL: refused, nothing written outside the data folder
        box = page.get_by_label("Archive URL (change it to use a mirror)")
        box.fill(f"http://127.0.0.1:{http.server_address[1]}/oxford-iiit-pet.tgz")
        box.press("Enter")
        wait_ready(page)
        page.get_by_role("button", name="Download Oxford-IIIT Pet").click()
        message = _alert_with(page, "refused")
        assert str(data) not in message
        assert not list((tmp_path / "attack").rglob("escaped-*"))
        box.fill("file:///etc/passwd")
        box.press("Enter")
        wait_ready(page)
        page.get_by_role("button", name="Download Oxford-IIIT Pet").click()
        _alert_with(page, "Only http")

        # 2. a catastrophic regex: a message, and the health endpoint keeps answering meanwhile (the review:
        # 25 s without an answer). Probed side by side with a harmless pattern, the load of the machine alike.
        pattern = page.get_by_label("Pattern (the ( ) group is the label)")

        def probed(patterns: tuple[str, ...], expect: str | None = None) -> list[float]:
            latencies: list[float] = []
            stop = threading.Event()

            def probe() -> None:
                while not stop.is_set():
                    start = time.perf_counter()
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=60) as resp:
                        assert resp.status == 200
                    latencies.append(time.perf_counter() - start)
                    time.sleep(0.1)

            prober = threading.Thread(target=probe)
            prober.start()
            try:
                for typed in patterns:
                    pattern.fill(typed)
                    pattern.press("Enter")
                    page.wait_for_timeout(4000)  # the rerun starts a moment after Enter
                    wait_ready(page)
                if expect:
                    _alert_with(page, expect)
            finally:
                stop.set()
                prober.join()
            return sorted(latencies)

        harmless = probed((r"^([a-z]+)_\d+\.jpg$", r"^(.+)_\d+\.jpg$"))
        hostile = probed((r"^(a+)+$", r"^(a|aa)+$"), expect="took longer than")
        # issue 18: 21 characters that compiled to 2.5 GB with the interpreter lock held; refused before compiling
        explosive = probed((r"((a{300}){200}){100}",), expect="multiply to")
        for name, lat in (("harmless", harmless), ("catastrophic", hostile), ("explosive", explosive)):
            print(f"health during {name} patterns: {len(lat)} probes, median {lat[len(lat) // 2]:.3f} s, "
                  f"slowest {lat[-1]:.3f} s")  # fmt: skip
        screenshot(page, "hardening-regex")

        # 3. /etc as a local folder: the same message as any path the server does not share
        page.get_by_role("tab", name="Local folder").click()
        folder = page.get_by_label("Folder of images (searched recursively)")
        folder.fill("/etc")
        folder.press("Enter")
        wait_ready(page)
        page.get_by_role("button", name="Use this folder").click()
        _alert_with(page, "Cannot open")
        assert_no_exception(page)
        screenshot(page, "hardening-folder")

        # 4. a wrong-typed run.json: one warning line on the Training page, every page still up
        page.locator("[data-testid='stSidebarNav']").get_by_role("link", name="Training", exact=True).click()
        wait_ready(page)
        line = _alert_with(page, "Skipped run folder badrun")
        assert "created" in line
        assert_no_exception(page)
        screenshot(page, "hardening-runs")
    http.shutdown()
    http.server_close()


# ---- issue 18: what a student's script does over the websocket protocol --------------------------------


@pytest.fixture(scope="module")
def class_server_no_worker(tmp_path_factory):
    """A class-mode server whose jobs stay queued (no worker), its URL and data folder."""
    from tests.browser.conftest import make_browser_data

    data, images = make_browser_data(tmp_path_factory.mktemp("hardening-class"), n_per_class=4)
    env = {"PETLAB_TEACHER_PASSWORD": "the real one", "PETLAB_LOCAL_WORKER": "0"}
    with streamlit_server(data, images, env) as url:
        yield url, data


def guess_for(url: str, address: str, tabs: int, seconds: float) -> int:
    """Open `tabs` sessions from one computer and send wrong passwords from all of them for `seconds`;
    returns how many attempts were sent."""
    from tests.browser.protocol import Tab

    opened = [Tab(url, address) for _ in range(tabs)]
    for tab in opened:
        tab.run("")
    sent = [0] * tabs
    deadline = time.time() + seconds

    def guess(i: int) -> None:
        while time.time() < deadline:
            run = opened[i].press("auth_sign_in", auth_password=f"guess-{i}-{sent[i]}")
            assert not run.exceptions, run.exceptions
            sent[i] += 1

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(tabs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for tab in opened:
        tab.close()
    return sum(sent)


def test_guessing_the_password_from_many_sessions_is_no_faster_than_from_one(class_server_no_worker):
    """The attack: 1 s per wrong guess per session, so 20.7 guesses/s from 30 sessions, 33.7/s from 100."""
    url, data = class_server_no_worker
    many = guess_for(url, "10.6.6.6", tabs=20, seconds=12)
    one = guess_for(url, "10.6.6.7", tabs=1, seconds=12)
    log = (data / "auth" / "sign_in.log").read_text()
    checked_many = log.count("wrong teacher password from 10.6.6.6 ")
    checked_one = log.count("wrong teacher password from 10.6.6.7 ")
    print(f"20 sessions sent {many} guesses, {checked_many} checked; 1 session sent {one}, {checked_one} checked")
    assert many >= 40  # every session guessed again and again
    assert checked_many <= checked_one + 1 and checked_many <= 5  # waits of 1, 2, 4, 8 s: the same for both


def test_fresh_tabs_of_one_student_get_one_job_and_another_student_is_not_refused(class_server_no_worker):
    """The attack: one student opening fresh tabs queued 30 patch-index jobs in 16 s (the limit counted tabs)."""
    from core.teach import job_records
    from tests.browser.protocol import Tab

    url, data = class_server_no_worker
    said = []
    for n in range(9, 14):  # five fresh tabs of one computer, each asking for a different index
        tab = Tab(url, "10.6.6.66")
        tab.run("layers")
        run = tab.press("viz_patch_build", viz_patch_n=n)
        assert not run.exceptions, run.exceptions
        said += run.alerts
        tab.close()
    victim = Tab(url, "10.6.6.70")
    victim.run("layers")
    run = victim.press("viz_patch_build", viz_patch_n=20)
    victim.close()
    assert not any("one at a time" in a for a in run.alerts)
    assert sum("one at a time" in a for a in said) == 4
    queued = [j.client for j in job_records.list_jobs(data) if j.kind == "patch_index"]
    assert sorted(queued) == ["10.6.6.66", "10.6.6.70"]
