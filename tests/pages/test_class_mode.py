"""AppTest in class mode: sign-in, a reload keeps it, and a student's teacher-only actions are refused."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import classroom
from core.auth import ENV_PASSWORD, LAPTOP_USER, STUDENT, Identity
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


def test_laptop_mode_has_no_sign_in(pets_like, monkeypatch):
    monkeypatch.delenv(ENV_PASSWORD, raising=False)
    monkeypatch.setenv("PETLAB_DATASET", str(pets_like))
    at = open_app()
    assert not at.exception
    assert not at.sidebar.expander and not any("teacher" in s.value for s in at.sidebar.success)
    assert at.button(key="data_folder_go") is not None


def test_teacher_signs_in_and_a_reload_keeps_it(class_mode, data_folder):
    at = open_app()
    assert not at.exception
    assert [e.label for e in at.sidebar.expander] == ["Teacher sign-in"]
    before = at.query_params["s"]
    sign_in(at, "wrong")
    assert any("Wrong teacher password" in e.value for e in at.error)
    assert at.query_params["s"] == before
    sign_in(at, "correct horse")
    assert any("teacher" in s.value for s in at.sidebar.success)
    token = at.query_params["s"]
    assert token != before  # a fresh tab token: a URL copied before the sign-in reaches nothing
    assert "correct horse" not in str(dict(at.query_params)) and set(at.query_params) == {"s"}

    reloaded = open_app({"s": token})  # a reload: a new session, the same URL
    assert not reloaded.exception
    assert any("teacher" in s.value for s in reloaded.sidebar.success)
    old_url = open_app({"s": before})
    assert not any("teacher" in s.value for s in old_url.sidebar.success)

    values = data_folder / "sessions" / token / "values.json"
    stored = values.read_text()
    values.write_text(stored.replace('"auth_teacher": "', '"auth_teacher": "9'))  # a tampered sign-in
    assert not any("teacher" in s.value for s in open_app({"s": token}).sidebar.success)
    values.write_text(stored)

    at.button(key="auth_sign_out").click().run()
    assert [e.label for e in at.sidebar.expander] == ["Teacher sign-in"]
    assert not any("teacher" in s.value for s in open_app({"s": token}).sidebar.success)  # sign-out is real


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


def open_training(pets_like, query=None) -> AppTest:
    from core.pets import pets_spec

    at = AppTest.from_file(TRAINING_PAGE, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    return at.run()


def test_a_student_cannot_train_or_run_an_expensive_lr_finder(class_mode, pets_like, data_folder):
    from core import job_records, requests, runs

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
    at.button(key="train_extract_btn").click().run()  # shown, refused where it runs (core.jobs)
    assert any("the teacher prepares the body features" in e.value for e in at.error)
    assert job_records.list_jobs(data_folder) == []


def teacher_tab(data_folder) -> dict:
    """The query of a tab whose teacher sign-in is stored, as after signing in."""
    from core import auth
    from core.session_store import SessionStore, new_token
    from ui.auth import SIGN_IN_KEY

    token = new_token()
    SessionStore(data_folder / "sessions", token).update(
        {SIGN_IN_KEY: auth.teacher_token(token, auth.server_secret(data_folder), "correct horse")}
    )
    return {"s": token}


def test_the_teachers_train_button_queues_a_job(class_mode, pets_like, data_folder, monkeypatch):
    from core import job_records

    monkeypatch.setenv("PETLAB_LOCAL_WORKER", "0")  # the job stays queued: no worker in this test
    at = open_training(pets_like, teacher_tab(data_folder))
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
    from core import jobs

    queue = jobs.make_queue(data_folder)
    done = 0
    while (task := queue.huey.dequeue()) is not None:
        queue.huey.execute(task)
        done += 1
    return done


def test_lr_finder_and_features_are_jobs_whose_results_every_tab_sees(class_mode, pets_like, data_folder, monkeypatch):
    from core import job_records

    monkeypatch.setenv("PETLAB_LOCAL_WORKER", "0")  # this test runs the queue itself
    teacher = open_training(pets_like, teacher_tab(data_folder))
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
    assert teacher.button(key="train_use_valley") is not None

    reloaded = open_training(pets_like, {"s": teacher.query_params["s"]})  # a reload: new session, same tab
    reloaded.select_slider(key="train_size").set_value(32).run()
    assert len(reloaded.session_state["train_lrfind_history"]) == 1
    student = open_training(pets_like)  # another tab with the same settings finds the curve as well
    student.select_slider(key="train_size").set_value(32).run()
    assert len(student.session_state["train_lrfind_history"]) == 1
    assert student.button(key="train_use_valley") is not None
    assert len(job_records.list_jobs(data_folder)) == 1


def test_once_the_teacher_extracted_features_a_student_runs_the_lr_finder_in_the_page(
    class_mode, pets_like, data_folder, monkeypatch
):
    from core import job_records

    monkeypatch.setenv("PETLAB_LOCAL_WORKER", "0")
    teacher = open_training(pets_like, teacher_tab(data_folder))
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
    assert [j.kind for j in job_records.list_jobs(data_folder)] == ["extract"]  # no job for it


def test_a_duplicated_tab_gets_its_own_token_the_settings_and_no_sign_in(class_mode, data_folder, monkeypatch):
    """A tab that arrives with the ?s= of a live tab (the browser's Duplicate tab) forks a fresh token:
    the settings are copied, the teacher's sign-in is not; a reload (the old session gone) keeps the token."""
    from core import auth
    from core.session_store import SessionStore, new_token
    from ui import state
    from ui.auth import SIGN_IN_KEY
    from ui.i18n import LANG_KEY

    token = new_token()
    SessionStore(data_folder / "sessions", token).update(
        {SIGN_IN_KEY: auth.teacher_token(token, auth.server_secret(data_folder), "correct horse"), LANG_KEY: "zh"}
    )
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    # AppTest has no runtime and one session id for every app: name sessions by their state, say who is live
    monkeypatch.setattr(state, "_session_id", lambda: str(id(get_script_run_ctx().session_state)))
    live: set[str] = set()
    monkeypatch.setattr(state, "session_alive", lambda sid: sid in live)
    teacher = open_app({"s": token})
    assert teacher.session_state[state.TAB_TOKEN] == token
    assert any("**老师**" in s.value for s in teacher.sidebar.success)  # signed in, in the kept language
    live.add(state._HOLDERS[token])

    twin = open_app({"s": token})  # the teacher's tab duplicated while it is open
    assert not twin.exception
    fresh = twin.session_state[state.TAB_TOKEN]
    assert fresh != token and twin.query_params["s"] in (fresh, [fresh])
    assert twin.session_state[LANG_KEY] == "zh"  # the settings came along
    assert SIGN_IN_KEY not in SessionStore(data_folder / "sessions", fresh).values()
    assert twin.text_input(key="auth_password") is not None  # asked to sign in: a student until then
    assert not any("**老师**" in s.value for s in twin.sidebar.success)
    assert SIGN_IN_KEY in SessionStore(data_folder / "sessions", token).values()  # the teacher's tab keeps it

    live.clear()  # the teacher's tab reloads: its old session is gone, so the same token is kept
    reloaded = open_app({"s": token})
    assert reloaded.session_state[state.TAB_TOKEN] == token
    assert any("**老师**" in s.value for s in reloaded.sidebar.success)
