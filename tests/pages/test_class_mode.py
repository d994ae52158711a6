"""AppTest in class mode: sign-in, a reload keeps it, and a student's teacher-only actions are refused."""

import os
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.auth import ENV_PASSWORD, LAPTOP_USER, STUDENT, Identity
from core.nets.schedules import lr_shown
from core.teach import classroom
from ui.state import ACTIVE_DATASET

TIMEOUT = 120
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
DATA_PAGE = str(ROOT / "pages" / "data.py")  # widgets of a page are driven on the page itself


@pytest.fixture
def class_mode(monkeypatch, pets_like):
    monkeypatch.setenv(ENV_PASSWORD, "correct horse")
    monkeypatch.setenv("PETLAB_DATASET", str(pets_like))


def open_app(query=None, script=APP) -> AppTest:
    at = AppTest.from_file(script, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at.run()


def sign_in(at: AppTest, password: str) -> AppTest:
    at.text_input(key="auth_password").input(password)
    return at.button(key="auth_sign_in").click().run()


def test_laptop_mode_has_no_sign_in(pets_like, monkeypatch, data_folder):
    from core.data.synthetic import make_pets_like

    monkeypatch.delenv(ENV_PASSWORD, raising=False)
    monkeypatch.setenv("PETLAB_DATASET", str(pets_like))
    at = open_app()
    assert not at.exception
    assert not at.sidebar.expander and not any("teacher" in s.value for s in at.sidebar.success)
    mine = make_pets_like(data_folder / "mine", n_per_class=3, classes=("Bengal", "pug"))  # the data folder's own
    data = open_app(script=DATA_PAGE)
    data.text_input(key="data_folder_path").input(str(mine))
    data.button(key="data_folder_go").click().run()  # a laptop's user opens folders: no teacher to ask
    assert not data.exception and not data.error
    assert data.session_state[ACTIVE_DATASET].root == str(mine.resolve())


def test_teacher_signs_in_and_the_url_alone_restores_nothing(class_mode, data_folder):
    """Issue 18, item 7: whoever opened the teacher's ?s= URL after the teacher's connection dropped was the
    teacher for 12 h. The sign-in is now this connection's (and its browser's cookie's), never the URL's."""
    from core.store.session_store import SessionStore

    at = open_app()
    assert not at.exception
    assert [e.label for e in at.sidebar.expander] == ["Teacher sign-in"]
    before = at.query_params["s"]
    sign_in(at, "wrong")
    assert any("Wrong teacher password" in e.value for e in at.error)
    assert at.query_params["s"] == before
    time.sleep(1.1)  # a wrong password costs this computer a second's wait (core.auth.attempt_sign_in)
    sign_in(at, "correct horse")
    assert any("teacher" in s.value for s in at.sidebar.success)
    token = at.query_params["s"]
    assert token != before  # a fresh tab token: a URL copied before the sign-in reaches nothing
    assert "correct horse" not in str(dict(at.query_params)) and set(at.query_params) == {"s"}
    stored = SessionStore(data_folder / "sessions", token).values()
    assert not any(isinstance(v, str) and "." in v and len(v) > 40 for v in stored.values())  # no sign-in there
    at.run()  # later runs of the same connection stay signed in
    assert any("teacher" in s.value for s in at.sidebar.success)

    hijack = open_app({"s": token})  # the URL from the projector, in another browser (no cookie)
    assert not hijack.exception
    assert not any("teacher" in s.value for s in hijack.sidebar.success)
    assert hijack.text_input(key="auth_password") is not None
    class_page = open_app({"s": token}, script=str(ROOT / "pages" / "class.py"))
    assert any("teacher's" in e.value for e in class_page.error) and not class_page.header


def test_sign_out_ends_the_sign_in_in_every_connected_session_at_once(class_mode, data_folder):
    """Issue 18, item 8: a session connected while the teacher pressed Sign out stayed the teacher."""
    from tests.pages.test_class_page import as_teacher

    laptop = open_app()
    sign_in(laptop, "correct horse")
    other = as_teacher(AppTest.from_file(APP, default_timeout=TIMEOUT), data_folder).run()  # another browser
    assert any("teacher" in s.value for s in other.sidebar.success)
    laptop.button(key="auth_sign_out").click().run()
    assert [e.label for e in laptop.sidebar.expander] == ["Teacher sign-in"]
    other.run()  # its next rerun (the sidebar's job box reruns it within 3 s)
    assert not any("teacher" in s.value for s in other.sidebar.success)
    assert [e.label for e in other.sidebar.expander] == ["Teacher sign-in"]

    sign_in(laptop, "correct horse")  # and a new password ends it too
    assert any("teacher" in s.value for s in laptop.sidebar.success)
    with pytest.MonkeyPatch.context() as m:
        m.setenv(ENV_PASSWORD, "a new password")
        laptop.run()
        assert not any("teacher" in s.value for s in laptop.sidebar.success)


def test_password_guessing_from_many_tabs_is_no_faster(class_mode, data_folder, monkeypatch):
    """Issue 18, item 9: one wrong guess per second per tab, so 30 tabs guessed 30 times a second."""
    from core import auth

    monkeypatch.setattr(auth, "GUESS_BASE_WAIT_S", 60.0)  # longer than this test: every wait still runs
    tabs = [open_app() for _ in range(4)]
    for at in tabs:
        sign_in(at, "guess")
    said = [e.value for at in tabs for e in at.error]
    assert sum("Wrong teacher password" in m for m in said) == 1  # one guess checked, the others refused
    assert sum("Too many wrong passwords" in m for m in said) == 3
    sign_in(tabs[0], "correct horse")  # inside the wait even the right password is not checked
    assert not any("teacher" in s.value for s in tabs[0].sidebar.success)
    [guesser] = auth.sign_in_report(data_folder)
    assert guesser.client == auth.LOCAL_CLIENT and guesser.failures == 1 and guesser.refused == 4
    assert "wrong teacher password from local" in (data_folder / "auth" / auth.LOG_FILE).read_text()
    teacher = teacher_tab(AppTest.from_file(str(ROOT / "pages" / "class.py"), default_timeout=TIMEOUT),
                          data_folder).run()  # fmt: skip
    assert not teacher.exception
    assert any("Wrong teacher passwords in the last hour from 1 computer" in w.value for w in teacher.warning)
    assert any("sign_in.log" in c.value for c in teacher.caption)


def test_student_cannot_open_server_folders_or_import(class_mode, tmp_path):
    at = open_app(script=DATA_PAGE)
    before = at.session_state[ACTIVE_DATASET]
    at.text_input(key="data_folder_path").input(str(tmp_path))
    at.button(key="data_folder_go").click().run()  # the button is there: the guard is what refuses
    assert not at.exception
    assert any("only the teacher can open folders" in e.value for e in at.error)
    assert at.session_state[ACTIVE_DATASET] == before

    at.text_input(key="data_pets_local").input(str(tmp_path))
    at.button(key="data_pets_local_go").click().run()
    assert any("only the teacher can open folders" in e.value for e in at.error)
    at.button(key="data_download").click().run()
    assert any("only the teacher can download a dataset" in e.value for e in at.error)
    assert at.session_state[ACTIVE_DATASET] == before


def test_students_own_classes_are_private(class_mode, data_folder):
    alice, bob = open_app(script=DATA_PAGE), open_app(script=DATA_PAGE)
    alice.text_input(key="data_own_new").input("alices_cat")
    alice.button(key="data_own_add").click().run()
    assert not alice.exception
    tab = alice.query_params["s"]
    assert classroom.own_store(data_folder, Identity(STUDENT, tab)).classes() == {"alices_cat": 0}
    assert classroom.own_store(data_folder, LAPTOP_USER).classes() == {}  # not in the teacher's classes
    bob.run()
    assert not [box for box in bob.selectbox if box.label == "Add photos to"]  # Bob sees no class of Alice's
    bob_tab = bob.query_params["s"]
    assert bob_tab != tab and classroom.own_store(data_folder, Identity(STUDENT, bob_tab)).classes() == {}


TRAINING_PAGE = str(ROOT / "pages" / "training.py")


def open_training(pets_like, query=None, teacher=None) -> AppTest:
    """The Training page on pets_like; teacher: the data folder of a sign-in this session holds."""
    from core.data.pets import pets_spec

    at = AppTest.from_file(TRAINING_PAGE, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    if teacher is not None:
        teacher_tab(at, teacher)
    return at.run()


def test_a_student_cannot_train_or_run_an_expensive_lr_finder(class_mode, pets_like, data_folder):
    from core.store import runs
    from core.teach import job_records, requests

    at = open_training(pets_like)
    assert not at.exception
    at.select_slider(key="train_size").set_value(32)
    at.button(key="train_go1").click().run()  # a student's Train asks the teacher: nothing is queued or trained
    assert not at.exception
    assert any("Asked the teacher to train" in s.value for s in at.success)
    assert job_records.list_jobs(data_folder) == [] and runs.list_runs(data_folder / "runs")[0] == []
    asked = requests.all_requests(data_folder)
    assert [r.status for r in asked] == ["pending"] and asked[0].config.img_size == 32
    at.button(key="train_lrfind_btn").click().run()
    assert any("the teacher prepares the LR finder" in e.value for e in at.error)
    assert not at.session_state["train_lrfind_history"]
    at.button(key="train_extract_btn").click().run()  # shown, refused where it runs (core.teach.jobs)
    assert any("the teacher prepares the body features" in e.value for e in at.error)
    assert job_records.list_jobs(data_folder) == []


def teacher_tab(at: AppTest, data_folder) -> AppTest:
    """This AppTest session signed in as the teacher (see tests/pages/test_class_page.as_teacher)."""
    from tests.pages.test_class_page import as_teacher

    return as_teacher(at, data_folder)


def test_the_teachers_train_button_queues_a_job(class_mode, pets_like, data_folder, monkeypatch):
    from core.teach import job_records

    monkeypatch.setenv("PETLAB_LOCAL_WORKER", "0")  # the job stays queued: no worker in this test
    at = open_training(pets_like, teacher=data_folder)
    at.select_slider(key="train_size").set_value(32)
    at.button(key="train_go1").click().run()
    assert not at.exception
    assert any("Queued" in s.value for s in at.success)
    queued = job_records.list_jobs(data_folder)
    assert [j.status for j in queued] == ["queued"] and "32px" in queued[0].title


def test_students_see_no_server_paths_and_are_told_where_their_photos_go(class_mode, data_folder):
    at = open_app()  # a student: class mode, not signed in
    assert not at.exception
    assert not any("Data folder" in c.value for c in at.sidebar.caption)
    assert not any(str(data_folder) in m.value for m in [*at.sidebar.caption, *at.sidebar.markdown])
    assert any("private to this browser tab" in m.value for m in at.markdown)
    sign_in(at, "correct horse")
    assert any("Data folder" in c.value for c in at.sidebar.caption)  # the teacher runs the server


def test_privacy_note_per_role():
    assert classroom.own_classes_privacy_note(LAPTOP_USER) == "Everything stays on this machine."
    student = classroom.own_classes_privacy_note(Identity(STUDENT, "t"), hours=24)
    assert "private to this browser tab" in student and "24 hours" in student


def drain(data_folder) -> int:
    """Run every queued job in this process, as the worker would."""
    from core.teach import jobs

    queue = jobs.make_queue(data_folder)
    done = 0
    while (task := queue.huey.dequeue()) is not None:
        queue.huey.execute(task)
        done += 1
    return done


def test_lr_finder_and_features_are_jobs_whose_results_every_tab_sees(class_mode, pets_like, data_folder, monkeypatch):
    from core.teach import job_records

    monkeypatch.setenv("PETLAB_LOCAL_WORKER", "0")  # this test runs the queue itself
    teacher = open_training(pets_like, teacher=data_folder)
    teacher.select_slider(key="train_size").set_value(32).run()
    assert any("no cached body features yet" in c.value for c in teacher.caption)
    teacher.button(key="train_lrfind_btn").click().run()
    assert not teacher.exception
    [job] = job_records.list_jobs(data_folder)
    assert job.kind == "lr_find" and job.status == "queued" and job.queued_by.startswith("teacher:")
    assert any("Queued for the worker: 0 jobs ahead" in c.value for c in teacher.caption)
    assert not teacher.session_state["train_lrfind_history"]  # not computed in the page
    teacher.button(key="train_lrfind_btn").click().run()  # asked again: the same job
    assert len(job_records.list_jobs(data_folder)) == 1

    assert drain(data_folder) == 1
    teacher.run()
    assert not teacher.exception
    assert teacher.get("plotly_chart") and any(c.key == "train_lrfind_chart" for c in teacher.get("plotly_chart"))
    valley = teacher.session_state["train_lrfind_history"][-1].suggestions["valley"]
    teacher.button(key="train_use_valley").click().run()  # the worker's curve, applied as lr_max in this tab
    assert not teacher.exception and teacher.number_input(key="train_lr1").value == lr_shown(valley)

    reloaded = open_training(pets_like, {"s": teacher.query_params["s"]})  # a reload: new session, same tab
    reloaded.select_slider(key="train_size").set_value(32).run()
    assert len(reloaded.session_state["train_lrfind_history"]) == 1
    student = open_training(pets_like)  # another tab with the same settings finds the curve as well
    student.select_slider(key="train_size").set_value(32).run()
    assert len(student.session_state["train_lrfind_history"]) == 1
    student.button(key="train_use_valley").click().run()
    assert student.number_input(key="train_lr1").value == lr_shown(valley)
    assert len(job_records.list_jobs(data_folder)) == 1


def test_once_the_teacher_extracted_features_a_student_runs_the_lr_finder_in_the_page(
    class_mode, pets_like, data_folder, monkeypatch
):
    from core.teach import job_records

    monkeypatch.setenv("PETLAB_LOCAL_WORKER", "0")
    teacher = open_training(pets_like, teacher=data_folder)
    teacher.select_slider(key="train_size").set_value(32).run()
    teacher.button(key="train_extract_btn").click().run()
    assert not teacher.exception
    [job] = job_records.list_jobs(data_folder)
    assert job.kind == "extract" and job.status == "queued"
    assert drain(data_folder) == 1
    student = open_training(pets_like)
    student.select_slider(key="train_size").set_value(32).run()
    assert not [b for b in student.button if b.key == "train_extract_btn"]  # cached: nothing to prepare
    student.button(key="train_lrfind_btn").click().run()
    assert not student.exception and not student.error
    assert len(student.session_state["train_lrfind_history"]) == 1  # computed here, in seconds
    extract, here = job_records.list_jobs(data_folder)  # not queued for the worker: a job run in this process
    assert extract.kind == "extract" and here.kind == "lr_find" and here.status == "done"
    assert here.pid == os.getpid() and here.queued_by.startswith("student:")


def test_a_duplicated_tab_gets_its_own_token_and_the_settings(class_mode, data_folder, monkeypatch):
    """A tab that arrives with the ?s= of a live tab (the browser's Duplicate tab) forks a fresh token with a
    copy of the settings; a reload (the old session gone) keeps the token. Neither store holds a sign-in:
    a new connection is the teacher only through its browser's cookie (tests/browser/test_class_mode.py)."""
    from core.store.session_store import SessionStore, new_token
    from ui import tab_store as state
    from ui.i18n import LANG_KEY
    from ui.tab_store import SIGN_IN_KEY

    token = new_token()
    SessionStore(data_folder / "sessions", token).update({LANG_KEY: "zh"})
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    # AppTest has no runtime and one session id for every app: name sessions by their state, say who is live
    monkeypatch.setattr(state, "_session_id", lambda: str(id(get_script_run_ctx().session_state)))
    live: set[str] = set()
    monkeypatch.setattr(state, "session_alive", lambda sid: sid in live)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["s"] = token
    teacher = teacher_tab(at, data_folder).run()
    assert teacher.session_state[state.TAB_TOKEN] == token
    assert any("**老师**" in s.value for s in teacher.sidebar.success)  # signed in, in the kept language
    live.add(state._HOLDERS[token])

    twin = open_app({"s": token})  # the teacher's tab duplicated while it is open
    assert not twin.exception
    fresh = twin.session_state[state.TAB_TOKEN]
    assert fresh != token and twin.query_params["s"] in (fresh, [fresh])
    assert twin.session_state[LANG_KEY] == "zh"  # the settings came along
    for tab in (token, fresh):
        assert SIGN_IN_KEY not in SessionStore(data_folder / "sessions", tab).values()
    teacher.run()
    assert any("**老师**" in s.value for s in teacher.sidebar.success)  # the teacher's tab is unchanged

    live.clear()  # the teacher's tab reloads: its old session is gone, so the same token is kept
    reloaded = open_app({"s": token})
    assert reloaded.session_state[state.TAB_TOKEN] == token and reloaded.session_state[LANG_KEY] == "zh"


# ---- copied tabs and tabs that did nothing (issue 18, items 16 and 17) ------------------------------


def alices_tab(data_folder) -> tuple[str, object]:
    """A student tab whose active dataset is her own classes (two of two photos) and which kept a photo."""
    import io
    from dataclasses import asdict

    from PIL import Image

    from core.data.datasets import DatasetSpec
    from core.store.session_store import SessionStore, new_token

    token = new_token()
    store = classroom.own_store(data_folder, Identity(STUDENT, token))
    for name in ("alices_cat", "alices_mug"):
        store.add_class(name)
        for shade in (30, 60):
            buf = io.BytesIO()
            Image.new("RGB", (32, 32), (shade, len(name), 90)).save(buf, "PNG")
            store.add_photo(name, buf.getvalue())
    spec = DatasetSpec(name="Your own classes", kind="own", root=str(store.root), label_from="parent")
    tab = SessionStore(data_folder / "sessions", token)
    tab.update({ACTIVE_DATASET: asdict(spec)})
    tab.put_blob("aug_upload", b"alice's private photo", "alice.jpg")
    return token, spec


def test_a_copy_of_a_students_tab_never_reaches_her_own_classes(class_mode, data_folder, monkeypatch):
    """The review: a duplicate of a tab whose active dataset was that student's own classes kept pointing at
    her private folder, and saw and followed her photos. The copy is another student: it starts on the class
    dataset, and takes none of her kept photos."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    from core.store.session_store import SessionStore
    from ui import tab_store as state

    token, spec = alices_tab(data_folder)
    monkeypatch.setattr(state, "_session_id", lambda: str(id(get_script_run_ctx().session_state)))
    live: set[str] = set()
    monkeypatch.setattr(state, "session_alive", lambda sid: sid in live)
    alice = open_app({"s": token})
    assert alice.session_state[ACTIVE_DATASET] == spec  # her own tab: her classes
    live.add(state._HOLDERS[token])

    twin = open_app({"s": token})  # Duplicate tab, or her URL opened elsewhere while she is connected
    assert not twin.exception
    fresh = twin.session_state[state.TAB_TOKEN]
    assert fresh != token
    assert twin.session_state[ACTIVE_DATASET] != spec and "alices" not in str(twin.session_state[ACTIVE_DATASET])
    copied = SessionStore(data_folder / "sessions", fresh)
    assert ACTIVE_DATASET not in copied.values() and copied.get_blob("aug_upload") is None
    assert not any("alices_cat" in m.value for m in twin.sidebar.markdown)
    assert SessionStore(data_folder / "sessions", token).get_blob("aug_upload") is not None  # hers stays


def test_a_stored_dataset_in_another_students_space_is_never_restored(class_mode, data_folder):
    """Whatever put it there, a tab's stored active dataset in someone else's private space is dropped."""
    from dataclasses import asdict

    from core.store.session_store import SessionStore, new_token

    _alice, spec = alices_tab(data_folder)
    mallory = new_token()
    SessionStore(data_folder / "sessions", mallory).update({ACTIVE_DATASET: asdict(spec)})
    at = open_app({"s": mallory})
    assert not at.exception
    assert at.session_state[ACTIVE_DATASET] != spec


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != ".secret")


def test_a_tab_that_did_nothing_leaves_nothing_and_is_not_counted(class_mode, data_folder):
    """The review: a script opened 5-37 tabs a second, each left a heartbeat and a student folder for 24 h,
    and the Class page counted 409 students. A tab opened and dropped leaves no file; one open a while counts."""
    from ui.auth import FIRST_SEEN_KEY

    for _ in range(5):
        at = open_app(script=DATA_PAGE)  # every tab draws "Your own classes"
        assert not at.exception
        open_app()
    assert files_under(data_folder) == []
    assert not (data_folder / "students").exists()
    assert classroom.active_sessions(data_folder) == {"teacher": 0, "student": 0}

    stays = AppTest.from_file(APP, default_timeout=TIMEOUT)
    stays.session_state[FIRST_SEEN_KEY] = 0.0  # open for a while (its job box polls): a student connected
    stays.run()
    assert classroom.active_sessions(data_folder) == {"teacher": 0, "student": 1}


def test_the_teachers_tab_before_signing_in_is_no_student(class_mode, data_folder):
    from ui.auth import FIRST_SEEN_KEY

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[FIRST_SEEN_KEY] = 0.0
    at.run()
    assert classroom.active_sessions(data_folder) == {"teacher": 0, "student": 1}  # the teacher's tab, unsigned
    sign_in(at, "correct horse")
    at.session_state[FIRST_SEEN_KEY] = 0.0
    at.run()
    assert classroom.active_sessions(data_folder) == {"teacher": 1, "student": 0}
