"""AppTest: the Lesson page on stored runs: each step's code and output, ?step=, what to run when a run is missing;
in class mode, the teacher's step that students follow."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.auth import TEACHER, Identity
from core.data.datasets import scan_dataset
from core.data.pets import pets_spec
from core.teach import classroom
from core.train.lesson import WORKSHOP, RunRole
from tests.pages.helpers import stored_run
from ui.state import ACTIVE_DATASET

TIMEOUT = 120
PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "lesson.py")


def lesson_page(pets_like, step: int | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    if step is not None:
        at.query_params["step"] = str(step)
    return at


def test_without_a_dataset_it_says_where_to_choose_one():
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("Data" in i.value for i in at.info)


def test_first_step_shows_the_dataset_and_its_code(pets_like):
    at = lesson_page(pets_like).run()
    assert not at.exception
    assert at.header[0].value == "1 · Download the data"
    assert at.radio(key="lesson_source").value == "tab"  # no course runs here: this tab's Training settings
    assert "get_image_files(path)" in at.code[0].value
    assert at.metric[0].value == "60"  # 6 breeds × 10 images
    assert at.button(key="lesson_prev").disabled and not at.button(key="lesson_next").disabled


def test_the_url_opens_a_step_and_next_moves_on(pets_like):
    at = lesson_page(pets_like, step=7).run()
    assert at.header[0].value == "7 · Interpret the results"
    at.button(key="lesson_next").click().run()
    assert at.header[0].value == "8 · Unfreeze: the mistake"
    assert at.query_params["step"] == "8"  # the step is in the URL


def test_a_missing_run_says_what_trains_it(pets_like):
    at = lesson_page(pets_like, step=6).run()
    assert not at.exception
    assert any("Not prepared yet" in i.value for i in at.info)
    assert at.button(key="lesson_train_frozen").label == "▶ Train it now"  # laptop mode: the user is the teacher
    assert "learn.fit_one_cycle(2, 3e-3)" in at.code[0].value  # WORKSHOP's stage 1


def test_stored_runs_show_epochs_and_errors_side_by_side(pets_like):
    fingerprint = scan_dataset(pets_spec(pets_like)).fingerprint
    for role in (RunRole.FROZEN, RunRole.UNFROZEN):
        stored_run(WORKSHOP.config(role, fingerprint), epochs=2)
    at = lesson_page(pets_like, step=10).run()
    assert not at.exception
    assert not any("Not prepared" in i.value for i in at.info)
    assert [m.label for m in at.metric] == ["error rate, stage 2 (slice)", "error rate, stage 1 (frozen)"]
    assert len(at.dataframe) == 1 and len(at.get("plotly_chart")) == 1
    assert "lr_max=slice(1e-6, 1e-4)" in at.code[0].value


def test_download_as_notebook_holds_the_tabs_lesson(pets_like):
    at = lesson_page(pets_like).run()
    button = at.get("download_button")[0]
    assert button.proto.label == "Download as notebook"
    assert button.proto.url  # the notebook's bytes are served (their content: tests/core/train/test_notebook.py)
    # (the notebook itself is executed, and compared with the app's runs, in tests/core/train/test_notebook.py)


def test_chinese(pets_like):
    at = lesson_page(pets_like, step=2)
    at.query_params["lang"] = "zh"
    at.run()
    assert not at.exception
    assert at.header[0].value == "2 · 用正则表达式标注"


# ---- class mode: the teacher leads, students follow ------------------------------------------------------------

PASSWORD = "correct horse"


@pytest.fixture
def class_mode(monkeypatch, pets_like, data_folder):
    from core.auth import ENV_PASSWORD

    monkeypatch.setenv(ENV_PASSWORD, PASSWORD)
    monkeypatch.setenv("PETLAB_LOCAL_WORKER", "0")
    return data_folder


def teacher_page(pets_like, data_folder, step: int | None = None) -> AppTest:
    from tests.pages.test_class_page import as_teacher

    return as_teacher(lesson_page(pets_like, step), data_folder)


def shared(data_folder) -> int | None:
    found = classroom.lesson_step(data_folder)
    return found.step if found is not None else None


def test_the_teachers_step_is_the_class_step_and_a_look_ahead_moves_nobody(class_mode, pets_like):
    teacher = teacher_page(pets_like, class_mode, step=6).run()
    assert not teacher.exception
    assert teacher.toggle(key="lesson_lead").value  # leading by default
    assert shared(class_mode) == 6
    teacher.button(key="lesson_next").click().run()
    assert teacher.header[0].value.startswith("7 ·") and shared(class_mode) == 7
    teacher.toggle(key="lesson_lead").set_value(False).run()  # a look ahead, the class stays
    teacher.button(key="lesson_next").click().run()
    assert teacher.header[0].value.startswith("8 ·") and shared(class_mode) == 7
    teacher.toggle(key="lesson_lead").set_value(True).run()  # leading again: the step shown is the class's
    assert shared(class_mode) == 8
    # the teacher's other tab (a laptop beside the projector) moved the class: this one shows it at its next run
    classroom.share_lesson_step(class_mode, Identity(TEACHER, "t" * 24), 3)
    teacher.run()
    assert teacher.header[0].value.startswith("3 ·") and shared(class_mode) == 3


def test_a_student_follows_and_a_url_moves_nobody(class_mode, pets_like):
    classroom.share_lesson_step(class_mode, Identity(TEACHER, "t" * 24), 4)
    student = lesson_page(pets_like, step=9).run()  # a student's URL names another step
    assert not student.exception
    assert student.toggle(key="lesson_follow").value  # following by default
    assert student.header[0].value == "4 · Look at a batch"  # (its URL follows: tests/browser/test_follow.py)
    assert shared(class_mode) == 4  # the student's URL moved nobody
    assert not [t for t in student.toggle if t.key == "lesson_lead"]  # no lead toggle for a student
    student.button(key="lesson_next").click().run()  # moving by oneself: exploring alone
    assert not student.toggle(key="lesson_follow").value
    assert student.header[0].value.startswith("5 ·") and shared(class_mode) == 4
    classroom.share_lesson_step(class_mode, Identity(TEACHER, "t" * 24), 6)
    student.run()
    assert student.header[0].value.startswith("5 ·")  # not following: stays
    student.toggle(key="lesson_follow").set_value(True).run()  # back to the teacher
    assert student.header[0].value.startswith("6 ·") and shared(class_mode) == 6


def test_before_the_teacher_shows_a_step_a_student_moves_freely(class_mode, pets_like):
    student = lesson_page(pets_like, step=2).run()
    assert any("not showing the lesson" in c.value for c in student.caption)
    student.button(key="lesson_next").click().run()
    assert student.header[0].value.startswith("3 ·") and student.toggle(key="lesson_follow").value
    assert shared(class_mode) is None


def test_other_pages_say_where_the_teacher_is_with_a_link_to_that_step(class_mode, pets_like):
    from tests.pages.test_class_page import APP

    classroom.share_lesson_step(class_mode, Identity(TEACHER, "t" * 24), 7)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.run()  # a student on the Data page (the default page)
    assert not at.exception
    assert any("The teacher is at step 7: **Interpret the results**" in c.value for c in at.sidebar.caption)
    link = next(e for e in at.sidebar.get("page_link") if "Open step 7" in e.proto.label)
    assert link.proto.page.endswith("lesson") and "step=7" in link.proto.query_string
    classroom.end_lesson(class_mode, Identity(TEACHER, "t" * 24))  # the teacher signed out
    at.run()
    assert not any("The teacher is at step" in c.value for c in at.sidebar.caption)


def test_following_in_chinese(class_mode, pets_like):
    classroom.share_lesson_step(class_mode, Identity(TEACHER, "t" * 24), 2)
    at = lesson_page(pets_like)
    at.query_params["lang"] = "zh"
    at.run()
    assert not at.exception
    assert at.header[0].value == "2 · 用正则表达式标注"
    assert at.toggle(key="lesson_follow").label == "跟随老师"
