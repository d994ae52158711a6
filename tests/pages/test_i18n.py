"""AppTest: the translated pages in Chinese (?lang=zh) leave no English sentence; the language picker and link.

The check (`english_left`): every text the page sends to the browser (titles, markdown, captions,
alerts, widget labels/options/help/placeholders, tab and expander labels, metric labels, image
captions, table headers, chart titles/axes/legend/annotations/hover text) is cut into runs without
Chinese characters; code spans, numbers, identifiers (anything with _ . / ( ) = or a digit) and
the proper names below are removed; three or more plain words in a row left over are an English
sentence. The same check on the English page must find sentences, or it would prove nothing.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.auth import ENV_PASSWORD
from core.data.pets import pets_spec
from core.i18n import translator
from tests.pages.test_interpretation import make_run
from ui.i18n import LANG_KEY, LANG_PARAM, PICKER_KEY
from ui.lesson import PRESENTER_CSS
from ui.state import ACTIVE_DATASET, ACTIVE_RUN

TIMEOUT = 180
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGES = ROOT / "pages"
# names that stay as they are in every language (glossary: code, datasets, models, libraries)
PROPER_NAMES = ("Oxford-IIIT Pet", "Teachable Machine", "Teachable-Machine", "Pet Lab", "ImageNet", "Parkhi et al.")
UNITS = {"px", "ms", "MB", "GB", "MP"}  # units stay as they are
TEXT_FIELDS = {"label", "body", "help", "placeholder", "options", "caption", "text", "default_label"}
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
WORD = re.compile(r"[A-Za-z][a-z]*|[A-Z]{2,}")


def proto_texts(message) -> list[str]:
    """Every user-facing string field of a protobuf message, recursively."""
    out = []
    for field, value in message.ListFields():
        if field.type == field.TYPE_MESSAGE:
            for item in [value] if hasattr(value, "ListFields") else value:
                if hasattr(item, "ListFields"):  # (a map's values may be plain)
                    out += proto_texts(item)
        elif field.type == field.TYPE_STRING and field.name in TEXT_FIELDS:
            out += [value] if isinstance(value, str) else list(value)
    return out


def figure_texts(spec: str) -> list[str]:
    """Titles, axis titles, legend names, annotations and hover templates of a plotly JSON figure."""
    fig = json.loads(spec)
    out = []

    def title(obj):
        t = (obj or {}).get("title")
        return t.get("text", "") if isinstance(t, dict) else (t or "")

    layout = fig.get("layout", {})
    out.append(title(layout))
    out += [title(v) for k, v in layout.items() if k.startswith(("xaxis", "yaxis"))]
    out += [a.get("text", "") for a in layout.get("annotations", [])]
    for trace in fig.get("data", []):
        out += [trace.get("name", ""), re.sub(r"%\{[^}]*\}|<[^>]+>", " ", trace.get("hovertemplate", ""))]
    return [t for t in out if t]


def walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from walk(child)


def page_texts(at: AppTest, skip_keys: tuple[str, ...] = ()) -> list[str]:
    """All text a run of the app sent, by element (see the module docstring)."""
    out = []
    for node in walk(at._tree):
        if getattr(node, "key", None) in skip_keys:
            continue
        kind = getattr(node, "type", "")
        proto = getattr(node, "proto", None)
        if kind == "plotly_chart":
            out += figure_texts(proto.spec)
            continue
        if kind in ("arrow_data_frame", "dataframe"):
            value = node.value
            frame = value.data if hasattr(value, "data") else value  # a Styler's frame
            if isinstance(frame, pd.DataFrame):
                out += [str(c) for c in frame.columns]
            continue
        if proto is not None and hasattr(proto, "ListFields"):
            out += proto_texts(proto)
    return [t for t in out if t and t.strip()]


def english_placeholders(at: AppTest) -> list[str]:
    """Labels of widgets that show Streamlit's own English placeholder ("Choose options", "Choose an
    option"): a multiselect or a selectbox with nothing chosen, drawn without a placeholder of ours."""
    out = []
    for node in walk(at._tree):
        kind = getattr(node, "type", "")
        empty = (kind == "multiselect" and not node.value) or (kind == "selectbox" and node.value is None)
        if empty and not node.proto.placeholder:
            out.append(node.proto.label)
    return out


def english_left(text: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """Runs of three or more English words outside code and names (empty when the text is translated)."""
    text = re.sub(r"```.*?```|`[^`]*`", " ", text, flags=re.S)
    text = re.sub(r"https?://\S+", " ", text)
    for name in (*PROPER_NAMES, *allowed):
        text = text.replace(name, " ")
    found = []
    for run in CJK.split(text):
        words = []
        for token in run.split():
            token = token.strip("*_,.;:!?\"'()[]{}«»“”‘’—–-…·→|#")
            identifier = re.search(r"[_./()=\d\\$%<>@]", token) or not token
            if not identifier and WORD.fullmatch(token):
                words.append(token)
                continue
            if len(words) >= 3:
                found.append(" ".join(words))
            words = []
        if len(words) >= 3:
            found.append(" ".join(words))
    return found


def widget_labels(at: AppTest, skip_keys: tuple[str, ...] = ()) -> list[str]:
    """The short texts a sentence check misses: widget, button, tab, expander and metric labels."""
    out = []
    for node in walk(at._tree):
        proto = getattr(node, "proto", None)
        if getattr(node, "key", None) in skip_keys or proto is None or not hasattr(proto, "label"):
            continue
        if isinstance(proto.label, str) and proto.label.strip():
            out.append(proto.label)
    return out


def plain_words(text: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """The plain English words of a short text, outside code, identifiers and names (as english_left)."""
    text = re.sub(r"`[^`]*`", " ", text)
    for name in (*PROPER_NAMES, *allowed):
        text = text.replace(name, " ")
    words = []
    for token in CJK.sub(" ", text).split():
        token = token.strip("*_,.;:!?\"'()[]{}«»“”‘’—–-…·→|#")
        if token in UNITS:
            continue
        if len(token) > 1 and not re.search(r"[_./()=\d\\$%<>@]", token) and WORD.fullmatch(token):
            words.append(token)
    return words


def labels_left_in_english(zh: AppTest, en: AppTest, skip_keys=(), allowed=()) -> list[str]:
    """Labels the Chinese page shows exactly as the English one does, with plain English words in them
    ("Switch model", "Cancel"): too short for english_left, as untranslated as a sentence."""
    english = set(widget_labels(en, skip_keys))
    return [t for t in widget_labels(zh, skip_keys) if t in english and plain_words(t, allowed)]


def untranslated(texts: list[str], allowed: tuple[str, ...] = ()) -> dict[str, list[str]]:
    return {t: left for t in texts if (left := english_left(t, allowed))}


def assert_chinese_throughout(zh: AppTest, en: AppTest, skip_keys=(), allowed=()) -> None:
    assert not zh.exception and not en.exception
    zh_texts, en_texts = page_texts(zh, skip_keys), page_texts(en, skip_keys)
    assert untranslated(en_texts, allowed), "the check finds no English sentence in English: it proves nothing"
    left = untranslated(zh_texts, allowed)
    assert not left, f"English left on the Chinese page: {left}"
    assert not english_placeholders(zh), f"Streamlit's English placeholder shown: {english_placeholders(zh)}"
    short = labels_left_in_english(zh, en, skip_keys, allowed)
    assert not short, f"labels left in English on the Chinese page: {short}"
    # every text that is a sentence in English is Chinese on the Chinese page (options like crop/pad stay)
    sentences = [t for t in en_texts if english_left(t, allowed)]
    assert len([t for t in zh_texts if CJK.search(t)]) >= len(sentences)
    assert len(zh_texts) >= 0.8 * len(en_texts)  # the same page, not a shorter one


def run_pair(script: str, setup: Callable[[AppTest], None], act: Callable[[AppTest], None] | None = None):
    """The page run in Chinese and in English (same setup, then `act`: clicks or uploads); (zh, en)."""
    runs = []
    for lang in ("zh", "en"):
        at = AppTest.from_file(script, default_timeout=TIMEOUT)
        setup(at)
        at.query_params[LANG_PARAM] = lang
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if act is not None:
            act(at)
            assert not at.exception, [e.value for e in at.exception]
        runs.append(at)
    return runs[0], runs[1]


@dataclass(frozen=True)
class Lesson:
    """What a page needs so its main content renders: a dataset, a stored run of it, the data folder."""

    images: Path
    run_id: str
    data_folder: Path
    env: pytest.MonkeyPatch


@pytest.fixture
def lesson(pets_like, data_folder, monkeypatch) -> Lesson:
    from core.data.datasets import scan_dataset

    monkeypatch.delenv(ENV_PASSWORD, raising=False)  # laptop mode unless a case signs a teacher in
    monkeypatch.setenv("PETLAB_LOCAL_WORKER", "0")  # class mode: jobs stay queued, no worker process
    fingerprint = scan_dataset(pets_spec(pets_like)).fingerprint
    return Lesson(pets_like, make_run(pets_like, dataset=fingerprint), data_folder, monkeypatch)


def with_dataset(at: AppTest, lesson: Lesson) -> None:
    at.session_state[ACTIVE_DATASET] = pets_spec(lesson.images)


def with_run(at: AppTest, lesson: Lesson) -> None:
    with_dataset(at, lesson)
    at.session_state[ACTIVE_RUN] = lesson.run_id


def home_setup(at: AppTest, lesson: Lesson) -> None:
    lesson.env.setenv("PETLAB_DATASET", str(lesson.images))  # the app's default page, as a class server starts


def augmentation_setup(at: AppTest, lesson: Lesson) -> None:
    with_dataset(at, lesson)
    at.session_state["aug_size"] = 128  # light on a shared 2-core machine
    at.session_state["aug_rows"] = 2


def layers_setup(at: AppTest, lesson: Lesson) -> None:
    with_run(at, lesson)  # the run's 64 px model: quick
    at.session_state["viz_stage"] = "features.3"  # (B, 24, 16, 16) at 64 px
    at.session_state["viz_proj_on"] = True  # every tab's content, not only the first one's
    at.session_state["viz_cmp_on"] = True
    at.session_state["viz_patch_n"] = 9


def layers_act(at: AppTest) -> None:
    at.button(key="viz_occ_go").click().run()
    # the patch index is saved in the data folder: the first language builds it, the second finds it
    for build in [b for b in at.button if b.key == "viz_patch_build"]:
        build.click().run()


def layers_class_mode_setup(at: AppTest, lesson: Lesson) -> None:
    lesson.env.setenv(ENV_PASSWORD, "correct horse")  # class mode; this tab is a student's
    layers_setup(at, lesson)
    at.session_state["viz_cmp_on"] = False
    at.session_state["viz_proj_on"] = False


def layers_class_mode_act(at: AppTest) -> None:
    at.button(key="viz_patch_build").click().run()  # a job for the worker (none runs here: it stays queued)


def layers_class_mode_check(zh: AppTest, en: AppTest) -> None:
    assert any(c.value.startswith("⏳ 已交给后台进程排队") for c in zh.caption), [c.value for c in zh.caption]


def prediction_act(at: AppTest) -> None:
    from tests.pages.test_prediction import jpeg

    at.file_uploader(key="pred_uploads").set_value([("cat.jpg", jpeg(0), "image/jpeg")]).run()


def class_setup(at: AppTest, lesson: Lesson) -> None:
    from tests.pages.test_class_page import PASSWORD, as_teacher

    lesson.env.setenv(ENV_PASSWORD, PASSWORD)
    with_run(at, lesson)
    as_teacher(at, lesson.data_folder)


def lesson_setup(at: AppTest, lesson: Lesson) -> None:
    with_dataset(at, lesson)
    at.query_params["step"] = "6"  # fit_one_cycle, its run not trained here: what trains it, Train it now


def lesson_presenter_setup(at: AppTest, lesson: Lesson) -> None:
    with_dataset(at, lesson)
    at.query_params["present"] = "true"  # the presenter view: settings folded, no page title
    at.query_params["step"] = "5"  # the learner: ImageNet mobilenet_v2's feature maps, a chart title


def lesson_presenter_check(zh: AppTest, en: AppTest) -> None:
    assert zh.toggle(key="present").value and zh.toggle(key="present").label == "演示视图"
    assert zh.expander[0].label == "设置与笔记本"
    assert len(zh.get("plotly_chart")) == len(en.get("plotly_chart")) == 1


def lesson_check(zh: AppTest, en: AppTest) -> None:
    assert zh.header[0].value == "6 · " + translator("zh").gettext("Train the head: fit_one_cycle")
    assert any(i.value.startswith("尚未准备") for i in zh.info), [i.value for i in zh.info]
    assert any("**输入**：" in m.value for m in zh.markdown)  # bold closed before the full-width colon
    assert zh.code[0].value == en.code[0].value  # code stays code


def home_check(zh: AppTest, en: AppTest) -> None:
    assert zh.title[0].value == "📂 数据：数据集里有什么？"
    assert [h.value for h in zh.header][-1] == "3 · 探索"
    sidebar = " ".join(m.value for m in zh.sidebar.markdown)
    assert "**数据集**：" in sidebar and "**模型**：" in sidebar  # the colon outside the bold (it renders)
    assert [m.label for m in zh.sidebar.metric] == ["图片", "类别"]
    assert zh.sidebar.selectbox(key=PICKER_KEY).value == "zh"


def data_check(zh: AppTest, en: AppTest) -> None:
    assert [m.label for m in zh.metric][:3] == ["匹配的文件", "未匹配", "找到的类别"]
    assert [m.value for m in zh.metric][:3] == ["60", "0", "6"]  # numbers as in English


def augmentation_check(zh: AppTest, en: AppTest) -> None:
    assert [h.value for h in zh.header] == ["缩放方式与填充模式", "模型实际接收到的输入", "fastai 代码"]
    assert zh.code[0].value == en.code[0].value  # code stays code


def interpretation_check(zh: AppTest, en: AppTest) -> None:
    assert [h.value for h in zh.header] == [
        "成绩对比",
        "混淆矩阵",
        "损失最大的样本",
        "最易混淆的类别对",
        "各类别的错误率",
    ]
    assert zh.metric[0].value == "8.33%"
    assert "错误率" in [str(c) for c in zh.dataframe[0].value.columns]


def layers_check(zh: AppTest, en: AppTest) -> None:
    assert [t.label for t in zh.tabs] == [
        "特征图",
        "卷积核",
        "最强激活图块",
        "反卷积投影",
        "遮挡敏感度",
        "Grad-CAM",
        "对比网络",
    ]
    assert len(zh.get("plotly_chart")) == len(en.get("plotly_chart")) >= 5  # grids, channel, occlusion maps
    assert len(zh.tabs[2].get("image")) == 9  # the patch index was built and shown
    assert zh.selectbox(key="viz_stage").options[0] == "起始层（features.0）"  # stage names that are words
    assert zh.selectbox(key="viz_occ_class").options[0] == "最高概率类别"


@dataclass(frozen=True)
class PageCase:
    """One registered page, set up so its main content renders, and what may stay English on it."""

    name: str
    script: str
    setup: Callable[[AppTest, Lesson], None] = with_dataset
    act: Callable[[AppTest], None] | None = None  # clicks or uploads after the first run (e.g. a photo)
    check: Callable[[AppTest, AppTest], None] | None = None  # the page's own exact expectations (zh, en)
    allowed: tuple[str, ...] = ("tiny test run",)  # the run's title, typed by whoever trained it
    skip_keys: tuple[str, ...] = ()


CASES = [
    PageCase("home", APP, home_setup, check=home_check),
    PageCase("data", str(PAGES / "data.py"), check=data_check),
    PageCase("augmentation", str(PAGES / "augmentation.py"), augmentation_setup, check=augmentation_check),
    PageCase("training", str(PAGES / "training.py"), with_run),
    PageCase("interpretation", str(PAGES / "interpretation.py"), with_run, check=interpretation_check),
    PageCase("layers", str(PAGES / "layers.py"), layers_setup, layers_act, check=layers_check),
    PageCase(
        "layers_class_mode",
        str(PAGES / "layers.py"),
        layers_class_mode_setup,
        layers_class_mode_act,
        check=layers_class_mode_check,
    ),
    PageCase("prediction", str(PAGES / "prediction.py"), with_run, prediction_act),
    PageCase("class", str(PAGES / "class.py"), class_setup),
    PageCase("lesson", str(PAGES / "lesson.py"), lesson_setup, check=lesson_check),
    PageCase(
        "lesson_presenter",
        str(PAGES / "lesson.py"),
        lesson_presenter_setup,
        check=lesson_presenter_check,
        allowed=(PRESENTER_CSS,),  # a <style> block (st.html), never shown as text
    ),
]


def test_every_registered_page_has_a_case():
    """A page added to app.py's navigation gets a case here too."""
    registered = set(re.findall(r'st\.Page\(\s*"pages/(\w+)\.py"', (ROOT / "app.py").read_text()))
    assert registered and registered == {Path(c.script).stem for c in CASES if c.script != APP}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_page_in_chinese_leaves_no_english(case, lesson):
    """Each page with its main content shown, in ?lang=zh and ?lang=en: no English sentence left in Chinese."""
    zh, en = run_pair(case.script, lambda at: case.setup(at, lesson), case.act)
    assert_chinese_throughout(zh, en, case.skip_keys, case.allowed)
    if case.check is not None:
        case.check(zh, en)


def test_data_page_error_in_chinese(pets_like):
    """A bad pattern's message (core/labels) comes in the tab's language."""
    at = AppTest.from_file(str(PAGES / "data.py"), default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.query_params[LANG_PARAM] = "zh"
    at.run()
    box = next(t for t in at.text_input if t.label.startswith("模式"))
    box.set_value("(unclosed").run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(e.startswith("正则表达式无效") and "在模式可用之前，标签保持不变。" in e for e in errors), errors


@pytest.mark.parametrize(
    ("text", "left"),
    [
        ("Choose a source below, label it", ["Choose a source below label it"]),
        ("Labels come from", ["Labels come from"]),
        ("train / valid", []),
        ("请选择 `from_name_re` 或 Oxford-IIIT Pet 数据集", []),
        ("course-v3 第 1 课：resnet34，fit_one_cycle(4)", []),
        ("实际 Bengal → 预测 Persian（1 张图片）", []),
        ("ImageNet 均值 (0–1 pixels)", []),
        ("模型 mobilenet_v2 · 训练记录 `abc123`", []),
    ],
)
def test_the_check_itself(text, left):
    assert english_left(text) == left


@pytest.mark.parametrize(
    ("label", "words"),
    [
        ("Switch model", ["Switch", "model"]),
        ("⏹ Cancel", ["Cancel"]),
        ("do_flip", []),
        ("min_val", []),
        ("Grad-CAM", []),
        ("🌐 语言", []),
        ("Oxford-IIIT Pet", []),
        ("p (px)", []),
    ],
)
def test_the_label_check_itself(label, words):
    assert plain_words(label) == words


def test_picker_switches_language_and_keeps_it_across_reloads(pets_like, monkeypatch):
    monkeypatch.setenv("PETLAB_DATASET", str(pets_like))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert at.title[0].value.startswith("📂 Data")  # no link, no browser locale: English
    at.sidebar.selectbox(key=PICKER_KEY).set_value("zh").run()
    assert not at.exception
    assert at.title[0].value == "📂 数据：数据集里有什么？"
    assert at.query_params[LANG_PARAM] == ["zh"] or at.query_params[LANG_PARAM] == "zh"
    token = at.query_params["s"]
    token = token[0] if isinstance(token, list) else token

    reloaded = AppTest.from_file(APP, default_timeout=TIMEOUT)  # a reload keeps only the tab's ?s= token
    reloaded.query_params["s"] = token
    reloaded.run()
    assert not reloaded.exception
    assert reloaded.title[0].value == "📂 数据：数据集里有什么？"
    assert reloaded.session_state[LANG_KEY] == "zh"

    link = AppTest.from_file(APP, default_timeout=TIMEOUT)  # the teacher's link wins over a stored choice
    link.query_params["s"] = token
    link.query_params[LANG_PARAM] = "en"
    link.run()
    assert link.title[0].value.startswith("📂 Data")


def test_message_made_in_a_callback_is_in_the_tab_language(pets_like):
    """A widget callback runs before the page sets the language: it still speaks the tab's language."""
    at = AppTest.from_file(str(PAGES / "data.py"), default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.query_params[LANG_PARAM] = "zh"
    at.run()
    at.text_input(key="data_own_new").set_value("!!!")
    at.button(key="data_own_add").click().run()
    assert not at.exception
    assert any(e.value.startswith("类别名可以包含（任何语言的）文字") for e in at.error), [e.value for e in at.error]


def test_browser_language_decides_without_a_link(pets_like, monkeypatch):
    import ui.i18n

    monkeypatch.setenv("PETLAB_DATASET", str(pets_like))
    monkeypatch.setattr(ui.i18n, "browser_language", lambda: "zh-CN")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert at.title[0].value == "📂 数据：数据集里有什么？"
    assert LANG_PARAM not in at.query_params  # only an explicit choice goes into the URL
    monkeypatch.setattr(ui.i18n, "browser_language", lambda: "fr-FR")  # not offered: English
    assert AppTest.from_file(APP, default_timeout=TIMEOUT).run().title[0].value.startswith("📂 Data")


def test_class_mode_sidebar_and_refusals_in_chinese(pets_like, monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_PASSWORD, "correct horse")
    monkeypatch.setenv("PETLAB_DATASET", str(pets_like))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params[LANG_PARAM] = "zh"
    at.run()
    assert not at.exception
    assert [e.label for e in at.sidebar.expander] == ["老师登录"]
    assert any(c.value.startswith("课堂模式：") for c in at.sidebar.caption)
    at.sidebar.text_input(key="auth_password").input("wrong").run()
    at.sidebar.button(key="auth_sign_in").click().run()  # a callback: the session's language
    assert any(e.value.startswith("老师密码错误。") for e in at.sidebar.error)  # and when to try again

    page = AppTest.from_file(str(PAGES / "data.py"), default_timeout=TIMEOUT)
    page.query_params[LANG_PARAM] = "zh"
    page.run()
    page.text_input(key="data_folder_path").input(str(tmp_path))
    page.button(key="data_folder_go").click().run()
    assert any(e.value == "课堂模式下只有老师才能打开服务器上的文件夹。" for e in page.error)


# ---- the Training and Class pages (their helpers: ui/runs.py, ui/jobs.py, ui/queue_table.py, core figures and messages) ----


def test_training_page_in_chinese(pets_like):
    """Stage 1 trained and shown (loss chart, epochs table), stage 2's group table, the runs table and overlay,
    the LR finder's curves and suggestions: all Chinese, numbers as in English."""
    from core.data.datasets import scan_dataset
    from core.store.records import LRFinderResult
    from tests.pages.helpers import stored_run, training_page_config
    from ui.runs import TRAIN_LAST

    spec = pets_spec(pets_like)
    run_id = stored_run(training_page_config(scan_dataset(spec).fingerprint))
    lrs = [1e-7 * 1.3**i for i in range(40)]
    finder = LRFinderResult(lrs, [2.0 - 0.01 * i for i in range(40)], {"valley": 2.5e-3, "minimum": 1e-3,
                            "steep": 5e-4, "slide": 4e-3}, {"valley": (2.5e-3, 1.5)}, "frozen", True, 1.0)  # fmt: skip

    def setup(at):
        at.session_state[ACTIVE_DATASET] = spec
        at.session_state[ACTIVE_RUN] = run_id
        at.session_state[TRAIN_LAST] = run_id
        at.session_state["train_lrfind_history"] = [finder, finder]

    zh, en = run_pair(str(PAGES / "training.py"), setup)
    assert_chinese_throughout(zh, en)
    assert zh.title[0].value == "🏋️ 训练：微调预训练网络"
    assert [h.value for h in zh.header] == ["1 · 模型与数据", "2 · 阶段 1：冻结主干", "3 · 阶段 2：解冻，使用判别式学习率",
                                            "4 · 训练好的模型"]  # fmt: skip
    assert any(s.value.startswith("已经训练过：") for s in zh.success)
    assert len(zh.get("plotly_chart")) == len(en.get("plotly_chart")) == 4  # LR finder, schedule, run, overlay
    assert [str(c) for c in zh.table[-1].value.columns] == ["模型", "数据集", "标题", "错误率", "轮数",
                                                          "训练用时（秒）", "当前"]  # fmt: skip
    shown = [t.replace("\\", "") for t in zh.table[-1].value["标题"]]  # (escaped: st.table renders Markdown)
    assert shown == ["mobilenet_v2，64 像素：冻结训练 2 轮（缓存特征，学习率 3e-03）"]


def test_class_page_in_chinese(pets_like, data_folder, monkeypatch):
    """The teacher's Class page with runs, a student's classes and done, running and queued jobs: all Chinese."""
    import io

    from PIL import Image

    from core import auth
    from core.auth import ENV_PASSWORD, STUDENT, Identity
    from core.data.datasets import scan_dataset
    from core.store.records import EventKind, TrainEvent
    from core.teach import classroom, job_records, jobs
    from tests.pages.helpers import stored_run
    from tests.pages.test_class_page import CLASS_PAGE, PASSWORD, as_teacher

    monkeypatch.setenv(ENV_PASSWORD, PASSWORD)
    monkeypatch.setenv("PETLAB_DATASET", str(pets_like))
    monkeypatch.setenv("PETLAB_LOCAL_WORKER", "0")  # jobs stay as written: no worker process
    spec = pets_spec(pets_like)
    scan = scan_dataset(spec)
    teacher = Identity(auth.TEACHER, "e" * 24)
    plan = [config for _name, config in jobs.lesson_plan(scan.fingerprint, img_size=32)]
    done = jobs.submit(data_folder, teacher, plan[0], spec)
    run_id = stored_run(plan[0])
    job_records.update_job(data_folder, done.job_id, status="done", run_id=run_id, started=1.0, finished=5.0)
    failed = jobs.submit(data_folder, teacher, plan[2], spec)
    job_records.update_job(data_folder, failed.job_id, status="failed", error=job_records.WORKER_DIED, finished=9.0)
    running = jobs.submit(data_folder, teacher, plan[1], spec)
    event = TrainEvent(EventKind.BATCH, stage=1, epoch=0, n_epoch=1, iter=3, n_iter=10, loss=0.5, lr=1e-4)
    job_records.update_job(
        data_folder, running.job_id, status="running", pid=None, host="elsewhere", updated=9e12, last=event
    )
    jobs.submit(data_folder, teacher, plan[0], spec, retrain=True)  # queued
    student = Identity(STUDENT, "d" * 24)
    store = classroom.own_store(data_folder, student)
    store.add_class("cup")
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), (90, 3, 0)).save(buf, "PNG")
    store.add_photo("cup", buf.getvalue())
    classroom.touch_session(data_folder, student)

    def setup(at):
        as_teacher(at, data_folder)
        at.session_state[ACTIVE_DATASET] = spec

    zh, en = run_pair(CLASS_PAGE, setup)
    assert_chinese_throughout(zh, en, allowed=("cup",))
    assert [h.value for h in zh.header] == ["1 · 课堂数据集与模型", "2 · 把本课的训练加入队列", "3 · 训练队列",
                                            "4 · 训练好的模型", "5 · 学生自己的类别"]  # fmt: skip
    assert [m.label for m in zh.metric] == ["已连接的学生", "老师的标签页", "训练后台进程", "磁盘可用空间"]
    queue = next(table.value for table in zh.table if "任务" in table.value.columns)
    assert queue["状态"].tolist() == ["排队中", "运行中", "失败", "完成"]
    assert queue["用时（秒）"].tolist() == ["", "", "", "4.0"]  # never "None" (issue 19)
    assert (
        queue["原因"].tolist()[2].startswith("这个任务运行时后台进程停止了")
    )  # the worker's English reason, shown translated
    bar = zh.get("progress")[0].proto.text
    assert bar.startswith("阶段 2 · 轮 1/1 · 批次 3/10 · 损失 0.500"), bar
    assert zh.multiselect(key="class_plan").options[0] == "阶段 1：冻结主干"


def live_training_script():
    """A bare page that feeds the live training display the events a two-stage training sends."""
    import streamlit as st

    from core.i18n import set_language
    from core.store.records import EpochRow, EventKind, RunConfig, StageConfig, TrainEvent
    from ui.progress import LiveTraining

    set_language(st.query_params.get("lang", "en"))
    stages = (StageConfig(2, 2.5e-3, fast=True), StageConfig(1, 1e-4, lr_min=1e-6, unfreeze=True))
    live = LiveTraining(RunConfig(dataset="d", stages=stages))
    live(TrainEvent(EventKind.EXTRACT, what="validation images", i=3, n=8))
    live(TrainEvent(EventKind.STAGE, stage=1, describe=stages[1].describe()))
    row = EpochRow(stage=0, epoch=0, train_loss=1.2, valid_loss=1.0, error_rate=0.439, seconds=3.0)
    live(TrainEvent(EventKind.EPOCH, n_epoch=1, row=row))
    live(TrainEvent(EventKind.BATCH, stage=1, epoch=0, n_epoch=1, iter=3, n_iter=10, loss=0.5, lr=1e-4))


def test_live_training_display_in_chinese():
    """The progress bar, stage line, live loss chart and epoch table while training (ui/progress.LiveTraining)."""
    pair = []
    for lang in ("zh", "en"):
        at = AppTest.from_function(live_training_script, default_timeout=TIMEOUT)
        at.query_params[LANG_PARAM] = lang
        pair.append(at.run())
    zh, en = pair
    assert_chinese_throughout(zh, en)
    assert zh.info[0].value == "阶段 2/2：解冻训练 1 轮（学习率 slice(1e-06, 1e-04)）"
    assert zh.get("progress")[0].proto.text == "阶段 2 · 轮 1/1 · 批次 3/10 · 损失 0.500 · 学习率 1e-04"
    assert [str(c) for c in zh.dataframe[0].value.columns][:2] == ["阶段", "轮"]


def test_another_tabs_training_is_named_in_the_tab_language():
    """The progress file names the training (other_training_ui); its config gives the title per language."""
    from core import i18n
    from core.store.records import RunConfig, StageConfig
    from core.store.training_lock import TrainProgress
    from ui.training import progress_title

    config = RunConfig(dataset="d", stages=(StageConfig(2, 3e-3, fast=True),))
    progress = TrainProgress(title=config.title(), config=config)
    try:
        i18n.set_language("zh")
        assert progress_title(progress) == "mobilenet_v2，128 像素：冻结训练 2 轮（缓存特征，学习率 3e-03）"
        assert progress_title(TrainProgress(title="old progress file")) == "old progress file"
        assert progress_title(None) == "一次训练"
    finally:
        i18n.set_language("en")
