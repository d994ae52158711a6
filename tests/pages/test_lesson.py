"""AppTest: the Lesson page on stored runs: each step's code and output, ?step=, what to run when a run is missing."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.data.datasets import scan_dataset
from core.data.pets import pets_spec
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
