"""Browser, issue 21: follow the teacher. A real class-mode server, the teacher and three students in separate
browser contexts. The teacher signs in, opens the Lesson page in presenter view and moves through the steps with
the keyboard and the mouse; a student's Lesson page follows within a few seconds (its visible step and that
step's output); the student's toggle stops it; another student's Data page shows where the teacher is with a
link that opens that step (and a student in presenter view, without the sidebar, follows too); a student's URL
naming another step moves nobody.

Every wait for a change made in another context is bounded by LIVE_S and timed (printed): the sidebar's
polling box (every 3 s, ui/jobs.py) reruns a following Lesson page when the teacher's step changed (ui/live.py).
"""

from __future__ import annotations

import time

import pytest

from core.i18n import translator
from core.teach import classroom
from core.train.lesson import STEPS
from tests.browser.conftest import assert_no_exception, new_tab, screenshot, streamlit_server, wait_ready
from tests.browser.test_class_mode import PASSWORD, sign_in
from tests.browser.test_lesson import output_shown

pytestmark = pytest.mark.browser
LIVE_S = 20.0  # "within a few seconds": a 3 s poll and the Lesson page's run, on a busy 2-core machine
TITLES = {s.number: s.title for s in STEPS}
SIDEBAR = "[data-testid='stSidebar']"
MAIN = "[data-testid='stMain']"


@pytest.fixture(scope="module")
def follow_server(tmp_path_factory):
    """A class-mode server on a generated Pets-shaped folder whose lesson stage 1 (WORKSHOP's) is trained."""
    import os

    from core.data.datasets import scan_dataset
    from core.train import training
    from core.train.lesson import WORKSHOP, RunRole
    from tests.browser.conftest import env_dataset_for, make_browser_data

    data, images = make_browser_data(tmp_path_factory.mktemp("follow"), n_per_class=8)
    saved = os.environ.get("PETLAB_DATA")
    os.environ["PETLAB_DATA"] = str(data)
    try:
        scan = scan_dataset(env_dataset_for(images))
        training.train_run(WORKSHOP.config(RunRole.FROZEN, scan.fingerprint), scan, data / "runs", data / "features")
    finally:
        if saved is None:
            os.environ.pop("PETLAB_DATA")
        else:
            os.environ["PETLAB_DATA"] = saved
    extra = {"PETLAB_TEACHER_PASSWORD": PASSWORD, "PETLAB_LOCAL_WORKER": "0"}
    with streamlit_server(data, images, extra_env=extra) as url:
        yield url, data


def heading(tab, number: int, title: str | None = None):
    return tab.get_by_role("heading", name=f"{number} · {title or TITLES[number]}")


def shows_step(tab, number: int, title: str | None = None) -> None:
    """The tab shows step `number`: its heading, its output painted, no error, and its URL says so (an older
    URL's step is replaced within a poll: the page shows the teacher's step at once, the URL follows)."""
    heading(tab, number, title).wait_for()
    wait_ready(tab)
    assert_no_exception(tab)
    in_url = "(n) => new URLSearchParams(location.search).get('step') === String(n)"
    if number == 1:  # the default step: no ?step=
        in_url = "(n) => [null, '1'].includes(new URLSearchParams(location.search).get('step'))"
    tab.wait_for_function(in_url, arg=number, timeout=LIVE_S * 1000)
    missing = output_shown(tab, number)
    assert not missing, f"step {number}: missing {missing}"


def followed_within(what: str, tab, number: int, title: str | None = None) -> float:
    """Wait for a (never reloaded) page to show step `number` after the teacher moved there; returns the seconds."""
    start = time.perf_counter()
    heading(tab, number, title).wait_for(timeout=LIVE_S * 1000)
    took = time.perf_counter() - start
    print(f"follow: {what} after {took:.1f} s")
    shows_step(tab, number, title)
    return took


def teacher_step(data) -> int | None:
    shared = classroom.lesson_step(data)
    return shared.step if shared is not None else None


def test_students_follow_the_teachers_steps(browser, follow_server):
    url, data = follow_server
    teacher_ctx, teacher = new_tab(browser)
    ada_ctx, ada = new_tab(browser)
    ben_ctx, ben = new_tab(browser)
    eve_ctx, eve = new_tab(browser)
    took: dict[str, float] = {}
    try:
        # ---- Ada opens the Lesson page before the teacher shows any step: she moves on her own -------------------
        ada.goto(url)
        ada.get_by_text("Teacher sign-in").wait_for()
        wait_ready(ada)
        ada.locator("[data-testid='stSidebarNav']").get_by_role("link", name="Lesson").click()
        heading(ada, 1).wait_for()
        wait_ready(ada)
        ada.get_by_text("The teacher is not showing the lesson now").wait_for()
        assert ada.get_by_role("switch", name="Follow the teacher").is_checked()

        # ---- the teacher signs in, opens the Lesson page, presenter view, → with the keyboard -----------------
        teacher.goto(url)
        teacher.get_by_text("Teacher sign-in").wait_for()
        wait_ready(teacher)
        sign_in(teacher)
        teacher.locator("[data-testid='stSidebarNav']").get_by_role("link", name="Lesson").click()
        shows_step(teacher, 1)
        assert teacher.get_by_role("switch", name="Students follow me").is_checked()
        teacher.get_by_text("Presenter view", exact=True).click()
        wait_ready(teacher)
        teacher.locator(SIDEBAR).wait_for(state="hidden")
        heading(teacher, 1).click()  # focus off the toggle: the arrow keys go to the page
        teacher.keyboard.press("ArrowRight")
        shows_step(teacher, 2)
        assert teacher_step(data) == 2
        took["→ to step 2"] = followed_within("Ada shows step 2", ada, 2)

        teacher.keyboard.press("ArrowRight")
        shows_step(teacher, 3)
        teacher.get_by_role("button", name="Next ▶").click()  # the mouse, too
        shows_step(teacher, 4)
        took["→, Next to step 4"] = followed_within("Ada shows step 4 (the batch)", ada, 4)
        screenshot(teacher, "follow-teacher-presenter")
        screenshot(ada, "follow-student-following")

        # ---- Ada turns following off: the teacher moves on, she stays; her sidebar says where the teacher is -----
        ada.get_by_text("Follow the teacher", exact=True).click()
        wait_ready(ada)
        assert not ada.get_by_role("switch", name="Follow the teacher").is_checked()
        heading(teacher, 4).click()
        teacher.keyboard.press("ArrowRight")
        shows_step(teacher, 5)
        start = time.perf_counter()
        ada.locator(SIDEBAR).get_by_text("The teacher is at step 5").wait_for(timeout=LIVE_S * 1000)
        took["step 5, in a sidebar"] = time.perf_counter() - start
        ada.wait_for_timeout(4000)  # more than a poll: her page did not move
        assert heading(ada, 4).count() == 1 and heading(ada, 5).count() == 0
        screenshot(ada, "follow-student-on-her-own")

        # ---- Ben is on the Data page: the sidebar says where the teacher is; its link opens that step ---------------
        ben.goto(url)
        ben.get_by_text("Teacher sign-in").wait_for()
        wait_ready(ben)
        side = ben.locator(SIDEBAR)
        assert f"The teacher is at step 5: {TITLES[5]}" in side.inner_text()
        screenshot(ben, "follow-student-other-page")
        side.get_by_role("link", name="Open step 5").click()
        shows_step(ben, 5)
        assert ben.get_by_role("switch", name="Follow the teacher").is_checked()
        ben.get_by_text("Presenter view", exact=True).click()  # no sidebar: its polling box still runs
        wait_ready(ben)
        ben.locator(SIDEBAR).wait_for(state="hidden")

        # ---- Eve, in Chinese, opens a URL naming step 9: she sees the teacher's step, and moves nobody --------------
        zh = translator("zh").gettext
        eve.goto(f"{url}/lesson?step=9&lang=zh")
        shows_step(eve, 5, zh(TITLES[5]))
        assert teacher_step(data) == 5
        eve.get_by_text("跟随老师", exact=True).click()  # her own way now: ← → move her page only
        wait_ready(eve)
        heading(eve, 5, zh(TITLES[5])).click()
        eve.keyboard.press("ArrowRight")
        shows_step(eve, 6, zh(TITLES[6]))
        eve.keyboard.press("ArrowRight")
        shows_step(eve, 7, zh(TITLES[7]))
        assert teacher_step(data) == 5  # a student moves nobody
        assert heading(ben, 5).count() == 1

        # ---- the teacher moves on: Ben (arrived by the link) follows; Ada turns following on and is back ----------
        heading(teacher, 5).click()
        teacher.keyboard.press("ArrowRight")
        shows_step(teacher, 6)
        took["→ to step 6 (the epochs)"] = followed_within("Ben shows step 6 (presenter view)", ben, 6)
        ada.get_by_text("Follow the teacher", exact=True).click()
        followed_within("Ada back with the teacher", ada, 6)
        screenshot(ben, "follow-student-link-followed")
        print("follow:", {k: round(v, 1) for k, v in took.items()})
        assert all(v < LIVE_S for v in took.values())
    finally:
        for ctx in (teacher_ctx, ada_ctx, ben_ctx, eve_ctx):
            ctx.close()
