"""Browser, class mode: a teacher and students in separate browser contexts on one real server.

The student cannot open server folders, download, queue a training (their Train asks the teacher), see
the Class page, stop a job or see another student's own classes; the teacher signs in, stays signed in
across a reload and page changes, queues a run on the Class page and closes the tab: the worker finishes
the job anyway.
"""

import re
import time

import pytest

from core.teach import job_records, worker
from tests.browser.conftest import (
    assert_no_exception,
    make_browser_data,
    new_tab,
    screenshot,
    streamlit_server,
    wait_ready,
)

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def class_server(tmp_path_factory):
    """A class-mode server with its own data folder; the worker it starts is stopped at the end."""
    data, images = make_browser_data(tmp_path_factory.mktemp("class-browser"), n_per_class=8)
    with streamlit_server(data, images, extra_env={"PETLAB_TEACHER_PASSWORD": PASSWORD}) as url:
        try:
            yield url, data
        finally:
            worker.stop_worker(data)


def sidebar_text(tab) -> str:
    return tab.locator("[data-testid='stSidebar']").inner_text()


def sign_in(tab) -> None:
    tab.get_by_text("Teacher sign-in").click()
    box = tab.get_by_label("Teacher password")
    box.fill(PASSWORD)
    box.press("Enter")
    tab.get_by_role("button", name="Sign in").click()
    tab.get_by_text("Signed in as the").wait_for()
    wait_ready(tab)


def test_student_is_refused_and_classes_stay_private(browser, class_server, tmp_path):
    url, data = class_server
    alice_ctx, alice = new_tab(browser)
    bob_ctx, bob = new_tab(browser)
    try:
        alice.goto(url)
        alice.get_by_text("Teacher sign-in").wait_for()  # the app frame (a fresh server first reruns into it)
        wait_ready(alice)
        assert alice.get_by_role("link", name="Class").count() == 0
        assert "s=" in alice.url

        alice.get_by_role("tab", name="Local folder").click()
        box = alice.get_by_label("Folder of images (searched recursively)")
        box.fill(str(tmp_path))
        box.press("Enter")
        wait_ready(alice)
        alice.get_by_role("button", name="Use this folder").click()  # shown, and refused where it runs
        alice.get_by_text("only the teacher can open folders on the server").wait_for()
        assert tmp_path.name not in sidebar_text(alice)
        alice.get_by_role("tab", name="Oxford-IIIT Pet").click()
        alice.get_by_role("button", name="Download Oxford-IIIT Pet").click()
        alice.get_by_text("only the teacher can download a dataset").wait_for()
        assert not (data / "archive").exists()

        alice.get_by_role("tab", name="Your own classes").click()
        name = alice.get_by_label("New class name")
        name.fill("alices_cat")
        name.press("Enter")
        alice.get_by_role("button", name="Add class").click()
        wait_ready(alice)
        alice.locator("input[aria-label='Add photos to'][value='alices_cat (0 photos)']").wait_for()
        assert_no_exception(alice)
        screenshot(alice, "class-student")

        alice.get_by_role("link", name="Training").click()
        wait_ready(alice)
        alice.get_by_role("button", name="▶ Train stage 1 (frozen)").click()  # a student's Train asks the teacher
        alice.get_by_text("waiting for the teacher").wait_for()
        assert job_records.list_jobs(data) == []  # nothing queued until the teacher approves
        assert alice.get_by_role("button", name="⏹ Stop").count() == 0

        alice.goto(url + "/class")  # the teacher's page by its address: not there for a student
        alice.get_by_text("Teacher sign-in").wait_for()
        wait_ready(alice)
        assert alice.get_by_role("heading", name="2 · Queue the lesson").count() == 0
        assert alice.get_by_role("button", name="Delete it").count() == 0

        bob.goto(url)
        bob.get_by_text("Teacher sign-in").wait_for()
        wait_ready(bob)
        bob.get_by_role("tab", name="Your own classes").click()
        wait_ready(bob)
        assert "alices_cat" not in bob.inner_text("body")
        assert not (data / "datasets" / "own" / "alices_cat").exists()  # not in the teacher's classes either
    finally:
        alice_ctx.close()
        bob_ctx.close()


def test_teacher_queues_a_run_and_it_finishes_with_the_tab_closed(browser, class_server):
    url, data = class_server
    ctx, teacher = new_tab(browser)
    student_ctx, student = new_tab(browser)
    try:
        teacher.goto(url)
        teacher.get_by_text("Teacher sign-in").wait_for()
        wait_ready(teacher)
        sign_in(teacher)
        teacher.reload()  # the sign-in survives a reload of the tab
        wait_ready(teacher)
        teacher.get_by_text("Signed in as the").wait_for()
        teacher.get_by_role("link", name="Class").click()
        wait_ready(teacher)
        teacher.get_by_role("heading", name="2 · Queue the lesson").wait_for()
        assert "Signed in as the" in sidebar_text(teacher)  # and page changes

        for label in ("stage 2: unfrozen, slice(1e-6, 1e-4)", "the mistake: unfrozen at 1e-3"):  # stage 1 only
            teacher.get_by_role("button", name=f"Remove {label}").click()
            wait_ready(teacher)
        teacher.get_by_role("button", name="Queue them").click()
        teacher.get_by_text("Queued 1 run. It trains even with this tab closed.").wait_for()
        assert_no_exception(teacher)
        screenshot(teacher, "class-teacher")
        ctx.close()  # the teacher leaves

        student.goto(url)
        student.get_by_text("Teacher sign-in").wait_for()
        wait_ready(student)
        deadline = time.time() + 400
        while time.time() < deadline:
            found = job_records.list_jobs(data)
            if found and found[0].status == "running":
                assert student.get_by_role("button", name="⏹ Stop").count() == 0  # no Stop for a student
            if found and not found[0].active:
                break
            time.sleep(1)
        done = job_records.list_jobs(data)[0]
        assert done.status == "done", done.error
        assert (data / "runs" / done.run_id / "model.pt").is_file()
        student.get_by_text("done", exact=False).first.wait_for(timeout=30_000)  # the sidebar box says so
        assert_no_exception(student)
        screenshot(student, "class-job-done")
    finally:
        student_ctx.close()


def set_seed(tab, value: str) -> None:
    box = tab.get_by_label("Seed")
    box.fill(value)
    box.press("Enter")
    wait_ready(tab)


def test_teacher_queues_the_lr_finder_and_its_curve_is_there_after_a_reload(browser, class_server):
    """A real click queues the LR finder as a worker job (no features cached: the page says so); its curve
    appears when the worker is done, survives a reload, and a student with the same settings sees it too."""
    url, data = class_server
    ctx, teacher = new_tab(browser)
    student_ctx, student = new_tab(browser)
    valley = re.compile(r"Use valley \(.+\) as lr_max")
    try:
        teacher.goto(url)
        teacher.get_by_text("Teacher sign-in").wait_for()
        wait_ready(teacher)
        sign_in(teacher)
        teacher.get_by_role("link", name="Training").click()
        wait_ready(teacher)
        set_seed(teacher, "7")  # settings no earlier test extracted features for
        teacher.get_by_text("no cached body features yet").wait_for()
        teacher.get_by_role("button", name="Run the LR finder").click()
        teacher.get_by_text("Queued for the worker", exact=False).or_(
            teacher.get_by_text("extracting body features")
        ).or_(teacher.get_by_text("lr_find:")).first.wait_for()
        assert_no_exception(teacher)
        lr_jobs = [j for j in job_records.list_jobs(data) if j.kind == "lr_find"]
        assert len(lr_jobs) == 1 and lr_jobs[0].queued_by.startswith("teacher:")
        teacher.get_by_role("button", name=valley).wait_for(timeout=400_000)  # the worker finished: the curve is drawn
        done = next(j for j in job_records.list_jobs(data) if j.kind == "lr_find")
        assert done.status == "done" and done.result is not None
        screenshot(teacher, "class-lr-finder-job")

        teacher.reload()  # the curve lives in the job record, not in the tab
        wait_ready(teacher)
        teacher.get_by_role("button", name=valley).wait_for()
        assert_no_exception(teacher)

        student.goto(url)
        student.get_by_text("Teacher sign-in").wait_for()
        wait_ready(student)
        student.get_by_role("link", name="Training").click()
        wait_ready(student)
        set_seed(student, "7")
        student.get_by_role("button", name=valley).wait_for()  # the same settings: the same curve
        assert len([j for j in job_records.list_jobs(data) if j.kind == "lr_find"]) == 1
        assert_no_exception(student)
    finally:
        ctx.close()
        student_ctx.close()


def test_a_duplicated_teacher_tab_is_a_new_tab_and_the_same_teacher(browser, class_server):
    """Two pages in one context, the second opened on the first's URL (what "Duplicate tab" does): the copy
    gets a token of its own; it is the same browser, whose sign-in cookie makes it the teacher too."""
    from urllib.parse import parse_qs, urlparse

    url, _ = class_server
    ctx, teacher = new_tab(browser)
    try:
        teacher.goto(url)
        teacher.get_by_text("Teacher sign-in").wait_for()
        wait_ready(teacher)
        sign_in(teacher)
        token = parse_qs(urlparse(teacher.url).query)["s"][0]
        twin = ctx.new_page()
        twin.set_default_timeout(120_000)
        twin.goto(teacher.url)  # the same URL, ?s= and all, while the teacher's tab is open
        twin.get_by_text("Signed in as the").wait_for()
        wait_ready(twin)
        twin.wait_for_function(f"() => !location.search.includes('s={token}')", timeout=60_000)
        assert parse_qs(urlparse(twin.url).query)["s"][0] != token
        teacher.reload()  # the teacher's tab keeps its token and its sign-in
        wait_ready(teacher)
        teacher.get_by_text("Signed in as the").wait_for()
        assert parse_qs(urlparse(teacher.url).query)["s"][0] == token
        assert_no_exception(twin)
    finally:
        ctx.close()


def test_the_teachers_url_opened_in_another_browser_is_a_student(browser, class_server):
    """Issue 18, item 7: someone who saw the teacher's ?s= (projector, shoulder) opened it once the teacher's
    connection dropped and was the teacher, Class page included. The sign-in is the browser's cookie now."""
    url, data = class_server
    ctx, teacher = new_tab(browser)
    thief_ctx, thief = new_tab(browser)  # another browser: its own cookies
    try:
        teacher.goto(url)
        teacher.get_by_text("Teacher sign-in").wait_for()
        wait_ready(teacher)
        sign_in(teacher)
        seen = teacher.url  # on the projector
        assert "correct horse" not in seen
        teacher.close()  # the lid shut: the connection drops
        thief.goto(seen)
        thief.get_by_text("Teacher sign-in").wait_for()
        wait_ready(thief)
        assert "Signed in as the" not in sidebar_text(thief)
        assert thief.get_by_role("link", name="Class").count() == 0
        thief.goto(seen.replace(url, url + "/class", 1))  # the teacher's page by its address and the URL's ?s=
        thief.get_by_text("Teacher sign-in").wait_for()
        wait_ready(thief)
        assert thief.get_by_role("heading", name="2 · Queue the lesson").count() == 0
        assert_no_exception(thief)
        screenshot(thief, "class-url-thief")

        back = ctx.new_page()  # the teacher opens the app again, in the same browser
        back.set_default_timeout(120_000)
        back.goto(url)
        back.get_by_text("Signed in as the").wait_for()
        wait_ready(back)
        back.get_by_role("link", name="Class").wait_for()
    finally:
        ctx.close()
        thief_ctx.close()


def test_sign_out_ends_the_sign_in_in_a_connected_session_at_once(browser, class_server):
    """Issue 18, item 8: a session connected while the teacher pressed Sign out stayed the teacher (the check
    was cached per session). Now every session checks the server's sign-ins; an open tab follows in seconds."""
    url, data = class_server
    a_ctx, laptop = new_tab(browser)
    b_ctx, other = new_tab(browser)  # another browser the teacher (or whoever had the password) signed in on
    try:
        for tab in (laptop, other):
            tab.goto(url)
            tab.get_by_text("Teacher sign-in").wait_for()
            wait_ready(tab)
            sign_in(tab)
        other.get_by_role("link", name="Class").click()
        wait_ready(other)
        other.get_by_role("heading", name="2 · Queue the lesson").wait_for()

        laptop.get_by_role("button", name="Sign out").click()
        laptop.get_by_text("Teacher sign-in").wait_for()
        started = time.time()
        other.get_by_text("Teacher sign-in").wait_for(timeout=30_000)  # nobody touched it: it followed by itself
        followed = time.time() - started
        wait_ready(other)
        assert "Signed in as the" not in sidebar_text(other)
        assert other.get_by_role("heading", name="2 · Queue the lesson").count() == 0
        assert_no_exception(other)
        print(f"the other browser's open tab was a student {followed:.1f} s after Sign out")
        other.reload()  # and its cookie restores nothing now
        other.get_by_text("Teacher sign-in").wait_for()
        wait_ready(other)
        assert "Signed in as the" not in sidebar_text(other)
    finally:
        a_ctx.close()
        b_ctx.close()
