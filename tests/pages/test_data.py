"""AppTest: the app frame and the Data page on a generated Pets-like folder."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.data.datasets import DatasetSpec
from core.data.pets import pets_spec
from ui.state import ACTIVE_DATASET

TIMEOUT = 120
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
DATA_PAGE = str(ROOT / "pages" / "data.py")


def test_app_frame_shows_data_page_and_sidebar(pets_like, monkeypatch):
    monkeypatch.setenv("PETLAB_DATASET", str(pets_like))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.title[0].value.startswith("📂 Data")
    sidebar_text = " ".join(m.value for m in at.sidebar.markdown)
    assert "Dataset:" in sidebar_text
    assert [m.value for m in at.sidebar.metric] == ["60", "6"]


def test_data_page_without_dataset_explains_what_to_do():
    at = AppTest.from_file(DATA_PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("No dataset chosen yet" in i.value for i in at.info)


def test_data_page_renders_chart_grid_and_tables(pets_like):
    at = AppTest.from_file(DATA_PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.run()
    assert not at.exception
    assert [m.value for m in at.metric][:3] == ["60", "0", "6"]  # matched, unmatched, classes
    charts = at.get("plotly_chart")
    assert len(charts) >= 3  # class balance, sizes, histograms
    assert len(at.get("image")) >= 12  # the sample grid
    headers = [h.value for h in at.header]
    assert headers[-1] == "3 · Explore"


def pattern_box(at):
    return next(t for t in at.text_input if t.label.startswith("Pattern"))


def test_invalid_regex_is_an_inline_error(pets_like):
    at = AppTest.from_file(DATA_PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.run()
    pattern_box(at).set_value("(unclosed").run()
    assert not at.exception
    assert any("Invalid regular expression" in e.value for e in at.error)
    assert at.session_state[ACTIVE_DATASET].pattern == pets_spec(pets_like).pattern  # labelling kept
    pattern_box(at).set_value(r"^([A-Za-z]+)_\d+\.jpg$").run()
    assert not at.exception and at.session_state[ACTIVE_DATASET].pattern == r"^([A-Za-z]+)_\d+\.jpg$"


def test_missing_folder_is_a_clear_message(tmp_path):
    at = AppTest.from_file(DATA_PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = DatasetSpec(name="gone", kind="folder", root=str(tmp_path / "gone"))
    at.run()
    assert not at.exception
    assert any("no longer exists" in e.value for e in at.error)


def _try_folder(typed: str) -> AppTest:
    at = AppTest.from_file(DATA_PAGE, default_timeout=TIMEOUT).run()
    at.text_input(key="data_folder_path").set_value(typed).run()
    at.button(key="data_folder_go").click().run()
    assert not at.exception
    return at


def test_local_folder_tab_rejects_missing_path(tmp_path):
    at = _try_folder(str(tmp_path / "missing"))
    assert any("Cannot open" in e.value for e in at.error)


def test_local_folder_is_no_path_oracle_and_no_browser(tmp_path, pets_like):
    """The review browsed /usr/share/icons; missing, unreadable and forbidden paths answered differently."""
    answers = []
    for typed in (str(tmp_path / "missing"), "/etc", "/usr/share", str(pets_like)):  # pets_like is not shared
        at = _try_folder(typed)
        assert at.session_state[ACTIVE_DATASET] is None and not at.get("image")
        answers.append(at.error[0].value.replace(typed, "<typed>"))
    assert len(set(answers)) == 1 and "/usr" not in answers[0]


def test_shared_folders_open_and_a_file_is_named_as_such(pets_like, monkeypatch):
    monkeypatch.setenv("PETLAB_FOLDERS", str(pets_like.parent))
    at = _try_folder(str(next(pets_like.glob("*.jpg"))))
    assert any("is a file, not a folder" in e.value for e in at.error)
    at = _try_folder(str(pets_like))
    assert at.session_state[ACTIVE_DATASET].root == str(pets_like.resolve())


def test_empty_folder_says_no_images_only(tmp_path):
    (tmp_path / "empty").mkdir()
    at = AppTest.from_file(DATA_PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = DatasetSpec(name="empty", kind="folder", root=str(tmp_path / "empty"))
    at.run()
    assert not at.exception
    assert any("No images found in empty" in w.value for w in at.warning)
    assert not any("every image got a label" in c.value for c in at.caption)


def test_dangling_links_and_sockets_are_listed_not_raised(tmp_path):
    """The review: a folder with a dangling link crashed every page of the session (folder_signature)."""
    from core.data.synthetic import make_pets_like

    root = make_pets_like(tmp_path / "ds", n_per_class=3)
    (root / "gone_1.jpg").symlink_to(tmp_path / "nowhere.jpg")
    at = AppTest.from_file(DATA_PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(root)
    at.run()
    assert not at.exception
    assert any("left out" in w.value for w in at.warning)
    assert any("gone_1.jpg" in str(df.value) and "dangling" in str(df.value) for df in at.dataframe)


def test_catastrophic_regex_is_stopped_with_a_message(tmp_path):
    from core.data.synthetic import make_pets_like

    root = make_pets_like(tmp_path / "ds", n_per_class=2)
    from PIL import Image

    Image.new("RGB", (8, 8)).save(root / ("a" * 34 + "!.jpg"))
    at = AppTest.from_file(DATA_PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(root)
    at.run()
    pattern_box(at).set_value(r"^(a|aa)+$").run()
    assert not at.exception
    assert any("took longer than" in e.value for e in at.error)


def test_an_explosive_pattern_is_refused_with_a_message_and_changes_nothing(pets_like):
    """Issue 18's 21-character pattern typed in the Data page's box: refused before compiling, labels kept."""
    at = AppTest.from_file(DATA_PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.run()
    pattern_box(at).set_value(r"((a{300}){200}){100}").run()
    assert not at.exception
    assert any("multiply to 6,020,100 copies" in e.value and "Labels are unchanged" in e.value for e in at.error)
    assert at.session_state[ACTIVE_DATASET].pattern == pets_spec(pets_like).pattern


def test_sidebar_switches_model_and_follows_the_pages(pets_like, monkeypatch):
    from core.data.datasets import scan_dataset
    from tests.pages.test_interpretation import make_run
    from ui.runs import NO_RUN, SIDEBAR_RUN_KEY
    from ui.state import ACTIVE_RUN, env_dataset

    monkeypatch.setenv("PETLAB_DATASET", str(pets_like))
    run_id = make_run(
        pets_like, scan_dataset(env_dataset()).fingerprint
    )  # the switcher offers the active dataset's runs
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    picker = at.sidebar.selectbox(key=SIDEBAR_RUN_KEY)
    assert picker.value == NO_RUN and picker.index == 0 and run_id in picker.options[1]
    picker.set_value(run_id).run()
    assert not at.exception
    assert at.session_state[ACTIVE_RUN] == run_id
    assert any("tiny test run" in m.value for m in at.sidebar.markdown)
    at.session_state[ACTIVE_RUN] = None  # a page changes the active run: the picker follows, not reverts
    at.run()
    assert at.session_state[ACTIVE_RUN] is None and at.sidebar.selectbox(key=SIDEBAR_RUN_KEY).value == NO_RUN


def test_own_classes_photos_can_be_removed(data_folder):
    import io

    from PIL import Image

    from core.teach.own_classes import OwnClassesStore

    store = OwnClassesStore(data_folder / "datasets" / "own")
    store.add_class("alpha")
    for shade in (10, 200):
        buf = io.BytesIO()
        Image.new("RGB", (20, 20), (shade, 0, 0)).save(buf, "PNG")
        store.add_photo("alpha", buf.getvalue())
    at = AppTest.from_file(DATA_PAGE, default_timeout=TIMEOUT).run()
    remove = [b for b in at.button if b.key and b.key.startswith("data_own_rm_alpha_")]
    assert len(remove) == 2
    remove[0].click().run()
    assert not at.exception
    assert store.classes() == {"alpha": 1}
    at.button(key="data_own_rm_class").click().run()
    assert not at.exception and store.classes() == {}


def test_own_classes_with_few_photos_are_flagged_before_use(data_folder):
    import io

    from PIL import Image

    from core.teach.own_classes import OwnClassesStore

    store = OwnClassesStore(data_folder / "datasets" / "own")
    for name in ("mug", "pen"):
        store.add_class(name)
        for shade in range(7):
            buf = io.BytesIO()
            Image.new("RGB", (20, 20), (shade * 30, 0, 0 if name == "mug" else 200)).save(buf, "PNG")
            store.add_photo(name, buf.getvalue())
    at = AppTest.from_file(DATA_PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("2 classes with fewer than 10 photos (mug, pen)" in c.value for c in at.caption)
    assert next(b for b in at.selectbox if b.label == "Add photos to").format_func("mug") == "mug (7 photos)"


def test_chinese_class_names_from_the_name_box_to_the_dataset(data_folder):
    """Issue 19 item 5: a student types 猫 and 狗 (refused before: ASCII only), adds photos, uses them."""
    import io
    import json

    from PIL import Image

    from core.teach.own_classes import OwnClassesStore

    at = AppTest.from_file(DATA_PAGE, default_timeout=TIMEOUT).run()
    for name in ("猫", "狗", "CHAT noir", "chat  noir"):
        at.text_input(key="data_own_new").input(name)
        at.button(key="data_own_add").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("already a class chat noir" in i.value.replace("CHAT", "chat") for i in at.info)
    store = OwnClassesStore(data_folder / "datasets" / "own")
    assert set(store.classes()) == {"猫", "狗", "CHAT noir"}
    picker = next(b for b in at.selectbox if b.label == "Add photos to")
    assert picker.value == "CHAT noir"  # the existing class is selected
    for name in ("猫", "狗"):
        for shade in range(3):
            buf = io.BytesIO()
            Image.new("RGB", (20, 20), (shade * 60, 0, 0 if name == "猫" else 200)).save(buf, "PNG")
            store.add_photo(name, buf.getvalue())
    store.remove_class("chat noir")
    at.run()
    at.button(key="data_own_use").click().run()
    assert not at.exception
    assert at.session_state[ACTIVE_DATASET].kind == "own"
    assert [m.value for m in at.metric][:3] == ["6", "0", "2"]  # matched, unmatched, classes
    balance = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert sorted(x for trace in balance["data"] for x in trace["x"]) == sorted(["猫", "狗"])
    at.text_input(key="data_own_new").input("a/猫").run()
    at.button(key="data_own_add").click().run()
    assert any("'/'" in e.value for e in at.error)
