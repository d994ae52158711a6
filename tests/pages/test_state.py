"""AppTest: settings kept per tab (?s=<token>) survive a page change and a reload; the Data page's dataset checks."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.data.datasets import DatasetSpec
from core.data.pets import pets_spec
from core.data.synthetic import make_folder_dataset
from ui.state import ACTIVE_DATASET, ACTIVE_RUN
from ui.tab_store import TAB_TOKEN, TOKEN_PARAM

TIMEOUT = 180
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
DATA_PAGE = str(ROOT / "pages" / "data.py")
AUG_PAGE = str(ROOT / "pages" / "augmentation.py")


def reload(at: AppTest, script: str = APP) -> AppTest:
    """A browser reload of the same tab: a new session (empty session state), the same URL."""
    again = AppTest.from_file(script, default_timeout=TIMEOUT)
    again.query_params[TOKEN_PARAM] = at.query_params[TOKEN_PARAM]
    return again


def test_augmentation_knobs_and_dataset_survive_page_change_and_reload(pets_like, tmp_path, monkeypatch):
    monkeypatch.setenv("PETLAB_FOLDERS", str(tmp_path))  # the server shares this folder (issue 8's allow-list)
    folder = make_folder_dataset(tmp_path / "folder", n_per_class=10, classes=("cat", "dog"))
    at = AppTest.from_file(DATA_PAGE, default_timeout=TIMEOUT).run()  # (AppTest clicks reach pages run alone)
    token = at.session_state[TAB_TOKEN]
    assert at.query_params[TOKEN_PARAM] in (token, [token])
    at.text_input(key="data_folder_path").set_value(str(folder)).run()
    at.radio(key="data_folder_label_from").set_value("parent").run()
    at.button(key="data_folder_go").click().run()
    assert at.session_state[ACTIVE_DATASET].root == str(folder.resolve())

    at = reload(at)
    at.run()
    assert at.session_state[ACTIVE_DATASET].root == str(folder.resolve())
    at.switch_page("pages/augmentation.py").run()
    assert not at.exception
    at.select_slider(key="aug_size").set_value(128).run()
    at.slider(key="aug_max_rotate").set_value(30.0).run()
    at.checkbox(key="aug_do_flip").uncheck().run()
    at.switch_page("pages/prediction.py").run()  # leave: Streamlit drops the page's widget state
    at.switch_page("pages/augmentation.py").run()
    assert not at.exception
    assert at.slider(key="aug_max_rotate").value == 30.0 and at.checkbox(key="aug_do_flip").value is False
    assert "max_rotate=30.0" in at.code[0].value

    at = reload(at)
    at.run()
    assert not at.exception
    assert at.session_state[TAB_TOKEN] == token
    assert at.session_state[ACTIVE_DATASET].root == str(folder.resolve())  # the dataset, not the default
    assert at.text_input(key="data_folder_path").value == str(folder)
    at.switch_page("pages/augmentation.py").run()
    assert at.select_slider(key="aug_size").value == 128 and at.slider(key="aug_max_rotate").value == 30.0


def test_another_tab_or_a_forged_token_starts_afresh(pets_like):
    at = AppTest.from_file(AUG_PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.session_state["aug_size"] = 128
    at.run()
    at.slider(key="aug_max_rotate").set_value(30.0).run()
    other = AppTest.from_file(AUG_PAGE, default_timeout=TIMEOUT)
    other.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    other.session_state["aug_size"] = 128
    other.query_params[TOKEN_PARAM] = "../../etc/passwd"
    other.run()
    assert not other.exception
    assert other.slider(key="aug_max_rotate").value == 10.0
    assert other.session_state[TAB_TOKEN] != at.session_state[TAB_TOKEN]


def test_active_run_survives_a_reload(pets_like, monkeypatch):
    from core.data.datasets import scan_dataset
    from tests.pages.test_interpretation import make_run
    from ui.state import env_dataset

    monkeypatch.setenv("PETLAB_DATASET", str(pets_like))
    run_id = make_run(pets_like, scan_dataset(env_dataset()).fingerprint)  # the sidebar offers the dataset's runs
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.sidebar.selectbox(key="sidebar_run").set_value(run_id).run()
    at = reload(at)
    at.run()
    assert not at.exception
    assert at.session_state[ACTIVE_RUN] == run_id
    assert any("tiny test run" in m.value for m in at.sidebar.markdown)


def test_class_filter_resets_when_the_dataset_changes(pets_like, tmp_path, monkeypatch):
    monkeypatch.setenv("PETLAB_FOLDERS", str(tmp_path))
    folder = make_folder_dataset(tmp_path / "folder", n_per_class=10, classes=("cat", "dog"))
    at = AppTest.from_file(DATA_PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.run()
    at.multiselect[0].set_value(["Bengal"]).run()
    assert len(at.get("image")) == 10 + 1  # the ten Bengal photos, and the normalisation sample
    at.text_input(key="data_folder_path").set_value(str(folder)).run()
    at.radio(key="data_folder_label_from").set_value("parent").run()
    at.button(key="data_folder_go").click().run()
    assert not at.exception
    shown = at.multiselect[0]
    assert shown.options == ["cat", "dog"] and shown.value == []


def test_data_page_warns_about_datasets_that_cannot_teach(tmp_path):
    own = make_folder_dataset(tmp_path / "own", n_per_class=7, classes=("mug", "pen"))
    at = AppTest.from_file(DATA_PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = DatasetSpec(name="own", kind="own", root=str(own), label_from="parent")
    at.run()
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "2 classes with fewer than 10 images" in warnings and "Only 2 validation images" in warnings
    assert "2 classes found" in [m.label for m in at.metric][2] or at.metric[2].label == "classes found"

    one = make_folder_dataset(tmp_path / "zip" / "fashion", n_per_class=12, classes=("x",))
    at.session_state[ACTIVE_DATASET] = DatasetSpec(name="f", kind="zip", root=str(one.parent), label_from="parent")
    at.run()
    assert not at.exception
    assert any("Only one class" in e.value for e in at.error)  # blocking: an error, not a warning
    assert at.metric[2].label == "class found"


def test_rotating_the_token_keeps_the_settings_and_drops_the_old_url(pets_like):
    def page():
        import streamlit as st

        from ui.tab_store import remember, rotate_tab_token

        remember("teacher_until", 123.0)
        if st.button("sign in", key="t_sign_in"):
            rotate_tab_token()

    at = AppTest.from_function(page, default_timeout=TIMEOUT).run()
    before = at.session_state[TAB_TOKEN]
    at.button(key="t_sign_in").click().run()
    after = at.session_state[TAB_TOKEN]
    assert after != before and at.query_params[TOKEN_PARAM] in (after, [after])
    from core.store.session_store import SessionStore
    from ui.tab_store import sessions_dir

    assert SessionStore(sessions_dir(), after).values() == {"teacher_until": 123.0}
    assert SessionStore(sessions_dir(), before).values() == {}


def test_training_and_prediction_settings_survive_a_page_change(pets_like, monkeypatch):
    monkeypatch.setenv("PETLAB_DATASET", str(pets_like))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/training.py").run()
    assert not at.exception
    at.select_slider(key="train_size").set_value(32).run()
    at.number_input(key="train_epochs1").set_value(3).run()
    at.switch_page("pages/prediction.py").run()
    assert not at.exception
    at.slider(key="pred_min_prob").set_value(0.7).run()
    at.switch_page("pages/data.py").run()
    at = reload(at)
    at.run()
    at.switch_page("pages/training.py").run()
    assert not at.exception
    assert at.select_slider(key="train_size").value == 32 and at.number_input(key="train_epochs1").value == 3
    assert "fit_one_cycle(3," in " ".join(str(c.proto.spec) for c in at.get("plotly_chart"))
    at.switch_page("pages/prediction.py").run()
    assert at.slider(key="pred_min_prob").value == 0.7


def test_keep_writes_no_default_but_every_change(pets_like):
    """keep(default=): a widget left at its default costs no disk write; a change, and a change back, are kept."""

    def page():
        import streamlit as st

        from ui.tab_store import keep

        st.slider("level", 0, 10, 5, key=keep("t_level", default=5))

    at = AppTest.from_function(page, default_timeout=TIMEOUT).run()
    at.run()  # the widget now has its live (default) value
    from core.store.session_store import SessionStore
    from ui.tab_store import sessions_dir

    store = SessionStore(sessions_dir(), at.session_state[TAB_TOKEN])
    assert "t_level" not in store.values()  # nothing written for a default
    at.slider(key="t_level").set_value(8).run()
    assert store.values()["t_level"] == 8
    at.slider(key="t_level").set_value(5).run()
    assert store.values()["t_level"] == 5  # back to the default: kept too (it differs from what was stored)


def test_pages_end_early_through_stop_page():
    """st.stop() leaves undrawn widgets out of step with the browser (issue 19 item 6, see ui.tab_store.stop_page):
    pages and ui helpers end a page early with stop_page(), never st.stop() itself."""
    import ast

    found = []
    for path in [*sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "ui").glob("*.py")), ROOT / "app.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            func = node.func if isinstance(node, ast.Call) else None
            if isinstance(func, ast.Attribute) and func.attr == "stop" and getattr(func.value, "id", None) == "st":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == ["ui/tab_store.py:" + str(_stop_page_line())], found


def _stop_page_line() -> int:
    import inspect

    from ui import tab_store

    source, start = inspect.getsourcelines(tab_store.stop_page)
    return start + next(i for i, line in enumerate(source) if line.strip() == "st.stop()")


def test_stop_page_forgets_the_kept_widgets_it_did_not_draw(pets_like):
    """The Augmentation page with no photo stops before its controls: their kept values are forgotten on the
    server (the browser forgot them too) and restored from the tab's store when they are drawn again."""
    at = AppTest.from_file(AUG_PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.run()
    at.button(key="aug_new").click().run()
    at.radio(key="aug_pad_mode").set_value("zeros").run()
    assert at.session_state["aug_seed"] == 1
    at.button_group(key="aug_source").set_value("Upload").run()  # no photo: the page stops before the controls
    assert not at.exception
    assert "aug_pad_mode" not in at.session_state and "aug_seed" not in at.session_state
    at.button_group(key="aug_source").set_value("Dataset").run()  # drawn again: restored from the store
    assert at.radio(key="aug_pad_mode").value == "zeros" and at.number_input(key="aug_seed").value == 1
    assert "seed 1" in at.code[0].value and "pad_mode='zeros'" in at.code[0].value
