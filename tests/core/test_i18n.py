"""Translations: catalogues complete and compiled, languages resolved, numbers and plurals per language."""

import gettext
import re
import subprocess
import sys
import unicodedata
from datetime import date
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from core import i18n

ROOT = Path(__file__).resolve().parents[2]
LANGS = [lang for lang in i18n.LANGUAGES if lang != i18n.DEFAULT_LANGUAGE]


def po_path(lang: str) -> Path:
    return ROOT / "locales" / lang / "LC_MESSAGES" / "messages.po"


def read_catalog(path: Path):
    with open(path, "rb") as fh:
        return read_po(fh)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> dict:
    """Every message the code marks today (pybabel extract with the Makefile's options), by id."""
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run(
        [
            str(pybabel),
            "-q",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_",
            "-k",
            "n_:1,2",
            "-k",
            "N_",
            "-k",
            "p_:1c,2",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
    )
    return {(m.id, m.context): m for m in read_catalog(pot) if m.id}


def msg_key(msgid) -> str:
    return msgid[0] if isinstance(msgid, tuple) else msgid


def test_extraction_finds_the_marked_pages(extracted):
    keys = {msg_key(msgid) for msgid, _context in extracted}
    assert "📂 Data: what's in the dataset?" in keys and "Confusion matrix" in keys and "Language" in keys


@pytest.mark.parametrize("lang", LANGS)
def test_every_extracted_message_has_a_translation(lang, extracted):
    catalog = read_catalog(po_path(lang))
    missing, empty, fuzzy = [], [], []
    for msgid, context in extracted:
        msg = catalog.get(msg_key(msgid), context=context)
        if msg is None or (isinstance(msgid, tuple) and not isinstance(msg.id, tuple)):
            missing.append(msgid)
            continue
        strings = msg.string if isinstance(msg.string, tuple) else (msg.string,)
        if not strings or not all(s.strip() for s in strings):
            empty.append(msgid)
        if msg.fuzzy:
            fuzzy.append(msgid)
    assert not missing, f"not in locales/{lang} (run `make i18n`, then translate): {missing[:10]}"
    assert not empty, f"untranslated in locales/{lang}: {empty[:10]}"
    assert not fuzzy, f"fuzzy (unchecked) in locales/{lang}: {fuzzy[:10]}"


@pytest.mark.parametrize("lang", LANGS)
def test_translations_keep_the_placeholders(lang):
    """A translation must use exactly the {names} of its message, or .format() raises on the page."""
    import string

    def names(text: str) -> set[str]:
        return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}

    bad = []
    for msg in read_catalog(po_path(lang)):
        if not msg.id:
            continue
        ids = msg.id if isinstance(msg.id, tuple) else (msg.id,)
        strings = msg.string if isinstance(msg.string, tuple) else (msg.string,)
        wanted = set().union(*(names(i) for i in ids))
        for text in strings:
            if names(text) - wanted or (len(ids) == 1 and names(text) != wanted):
                bad.append((ids[0], text))
    assert not bad, bad[:5]


@pytest.mark.parametrize("lang", LANGS)
def test_compiled_catalogue_matches_the_po_file(lang):
    """The committed .mo says exactly what the .po says (`make i18n` compiles it)."""
    mo = po_path(lang).with_suffix(".mo")
    assert mo.is_file(), "run `make i18n`"
    with open(mo, "rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    stale = []
    for msg in read_catalog(po_path(lang)):
        if not msg.id:
            continue
        if isinstance(msg.id, tuple):
            got = compiled.ngettext(msg.id[0], msg.id[1], 1)
            if got != msg.string[0]:
                stale.append(msg.id[0])
        else:
            got = compiled.pgettext(msg.context, msg.id) if msg.context else compiled.gettext(msg.id)
            if got != msg.string:
                stale.append(msg.id)
    assert not stale, f"{mo} is older than its .po (run `make i18n`): {stale[:5]}"


def test_translator_gives_chinese_and_english_fallback():
    zh, en = i18n.translator("zh"), i18n.translator("en")
    assert zh.gettext("Confusion matrix") == "混淆矩阵"
    assert en.gettext("Confusion matrix") == "Confusion matrix"
    assert zh.gettext("Class") == "类别" and zh.pgettext("navigation", "Class") == "课堂"  # same word, two meanings
    assert en.pgettext("navigation", "Class") == "Class"
    assert zh.gettext("a message nobody translated") == "a message nobody translated"
    assert i18n.translator("fr").lang == "en"  # an unsupported language gets English


def test_plurals_numbers_and_dates_per_language():
    zh, en = i18n.translator("zh"), i18n.translator("en")
    assert en.ngettext("{n} photo", "{n} photos", 1).format(n=1) == "1 photo"
    assert en.ngettext("{n} photo", "{n} photos", 3).format(n=3) == "3 photos"
    assert zh.ngettext("{n} photo", "{n} photos", 1).format(n=1) == "1 张照片"
    assert zh.ngettext("{n} photo", "{n} photos", 3).format(n=3) == "3 张照片"
    assert en.number(7400) == "7,400" and zh.number(7400) == "7,400"
    assert en.number(2.5, 2) == "2.50" and en.percent(0.0833, 2) == "8.33%"
    assert zh.date(date(2026, 11, 29)) == "2026年11月29日"
    assert en.date(date(2026, 11, 29)) == "Nov 29, 2026"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("zh", "zh"),
        ("zh-CN", "zh"),
        ("zh_Hans", "zh"),
        ("ZH-tw", "zh"),
        ("en-US", "en"),
        ("fr", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_language(code, expected):
    assert i18n.normalise_language(code) == expected


def test_current_language_drives_core_helpers():
    import pandas as pd

    from core.data import exploration

    items = pd.DataFrame({"width": [10], "height": [20], "rel": ["a.jpg"]})
    try:
        i18n.set_language("zh")
        assert i18n._("Confusion matrix") == "混淆矩阵"
        assert exploration.size_figure(items).layout.xaxis.title.text == "宽度（像素）"
        table = i18n.translated_columns(pd.DataFrame({"class": ["a"], "valid %": [20.0]}))
        assert list(table.columns) == ["类别", "验证占比 %"]
    finally:
        i18n.set_language("en")
    assert i18n._("Confusion matrix") == "Confusion matrix"
    assert exploration.size_figure(items).layout.xaxis.title.text == "width (px)"


def test_a_workers_extraction_progress_shows_in_the_tabs_language():
    """The worker reports extraction progress in English (it has no tab); each tab shows it in its own language."""
    from core.store.records import EventKind, TrainEvent
    from core.teach.job_records import event_text
    from core.train import features

    reported = features.TRAIN_VIEW.format(view=1, views=2)  # what core.train.features reports, in any language
    event = TrainEvent(EventKind.EXTRACT, what=reported, i=3, n=10)
    try:
        i18n.set_language("zh")
        shown = features.shown_progress(reported)
        assert "1/2" in shown
        assert shown != reported and shown == i18n._(features.TRAIN_VIEW).format(view=1, views=2)
        assert features.shown_progress(features.VALID_IMAGES) == i18n._(features.VALID_IMAGES) != features.VALID_IMAGES
        assert features.shown_progress(reported) in event_text(event) and "training images" not in event_text(event)
    finally:
        i18n.set_language("en")
    assert features.shown_progress(reported) == "training images, view 1/2"


# ---- Chinese typography: the rules a fluent reader would otherwise catch (issue 19) ---------------------------
HAN = r"\u3400-\u4dbf\u4e00-\u9fff"  # Chinese characters
CJK_PUNCT = "，。、；：？！（）《》「」『』【】"  # full-width punctuation (not “” ‘’, which also quote code)
CLOSING = "，。、；：？！）》」』】"
CJK = f"{HAN}{CJK_PUNCT}"


def zh_typography_problems(text: str) -> list[str]:
    """What breaks Chinese typography in a msgstr: code spans and {placeholders} stand for neutral text.

    - no space between two Chinese characters or full-width punctuation ("已以 **老师** 身份"),
      markdown emphasis markers aside;
    - no space after full-width punctuation or before closing punctuation ("数据集： fashion", "不确定。 最可能是");
    - full-width punctuation after a Chinese character: no ASCII , . ; : ! ? after it, no ASCII ( before
      a parenthesis after it ("批大小 (bs)"), no ASCII comma before Chinese text (lists use 、 or ，);
    - emphasis that cannot render: CommonMark does not close ** after punctuation when a letter follows
      ("**模型：**mobilenet" shows its asterisks), so the punctuation goes outside ("**模型**：").
    """
    problems = []
    plain = re.sub(r"`[^`]*`", "X", text)
    plain = re.sub(r"\{[^{}]*\}", "X", plain)
    bare = plain.replace("*", "")
    for pattern, what in (
        (rf"[{CJK}]\s+[{CJK}]", "space between Chinese characters"),
        (rf"[{CJK_PUNCT}]\s+\S", "space after full-width punctuation"),
        (rf"\S\s+[{CLOSING}]", "space before full-width punctuation"),
        (rf"[{HAN}][,.;:!?](?!\d)", "ASCII punctuation after a Chinese character"),
        (rf"[{HAN}]\s*\(", "ASCII parenthesis after a Chinese character"),
        (rf",\s*[{HAN}]", "ASCII comma before Chinese text"),
    ):
        problems += [f"{what}: {m.group(0)!r}" for m in re.finditer(pattern, bare)]
    problems += [f"emphasis that does not render: {run!r}" for run in unrendered_emphasis(plain)]
    return problems


def _flanking(before: str, after: str) -> tuple[bool, bool]:
    """CommonMark: whether a run of * between these characters can open (left-flanking) and close (right-)."""
    space = lambda c: c == "" or c.isspace()  # noqa: E731
    punct = lambda c: c != "" and unicodedata.category(c)[0] in "PS"  # noqa: E731
    left = not space(after) and (not punct(after) or space(before) or punct(before))
    right = not space(before) and (not punct(before) or space(after) or punct(after))
    return left, right


def unrendered_emphasis(text: str) -> list[str]:
    """The ** or * runs (outside code) that CommonMark cannot use as they pair up: opening, closing, opening…"""
    bad, opened = [], {}
    for m in re.finditer(r"\*+", text):
        before, after = text[m.start() - 1 : m.start()], text[m.end() : m.end() + 1]
        left, right = _flanking(before, after)
        run = m.group(0)
        if opened.get(run) is None:
            if not left:
                bad.append(text[max(0, m.start() - 4) : m.end() + 4])
            opened[run] = m.start()
        else:
            if not right:
                bad.append(text[max(0, m.start() - 4) : m.end() + 4])
            opened[run] = None
    return bad


@pytest.mark.parametrize(
    ("text", "broken"),
    [
        ("**数据集：** {name}", True),  # the "数据集： fashion"
        ("已以 **老师** 身份登录。", True),
        ("🤔 **不确定。** 最可能是 *{label}*（{prob}），但{reasons}。", True),
        ("2 轮 冻结，缓存特征", True),
        ("冻结, 缓存特征", True),
        ("批大小 (bs)", True),
        ("起始层 (conv1+bn+relu)", True),
        ("没有保存任何内容.", True),
        ("（12 种猫、25 种狗） 约 7,400 张照片", True),
        ("**模型：**{title}", True),
        ("**数据集**：{name}", False),
        ("已以**老师**身份登录。", False),
        ("🤔 **不确定**。最可能是 *{label}*（{prob}），但{reasons}。", False),
        ("冻结训练 2 轮（缓存特征，学习率 3e-03）→ 解冻训练 1 轮", False),
        ("学习率必须为正数，且 slice(lo, hi) 中 lo ≤ hi。", False),
        ("课程默认：`{pets}` · course-v3：`{v3}`。{note}", False),
        ("每个文件最大 {size} MB", False),
        ("版本 2.0", False),
    ],
)
def test_the_typography_check_finds_what_a_reader_would(text, broken):
    assert bool(zh_typography_problems(text)) == broken, zh_typography_problems(text)


def test_chinese_typography_in_every_msgstr():
    """Issue 19: stray spaces ("数据集： fashion", "已以 老师 身份登录", "不确定。 最可能是"), ASCII commas in
    Chinese lists and ASCII punctuation after Chinese text; each msgstr of locales/zh follows the rules."""
    bad = {}
    for msg in read_catalog(po_path("zh")):
        if not msg.id:
            continue
        for text in msg.string if isinstance(msg.string, tuple) else (msg.string,):
            if found := zh_typography_problems(text):
                bad[text] = found
    assert not bad, "\n".join(f"{text!r}: {found}" for text, found in bad.items())


def test_lists_and_sentences_are_joined_as_each_language_writes():
    """Issue 19: ASCII commas in Chinese lists; a space after "。" where two sentences were glued."""
    try:
        i18n.set_language("zh")
        assert i18n.listed(["Bengal", "Persian", "猫"]) == "Bengal、Persian、猫"
        assert i18n.sentences("已解压 3 张图片。", "", "跳过了 1 个文件。") == "已解压 3 张图片。跳过了 1 个文件。"
    finally:
        i18n.set_language("en")
    assert i18n.listed(["Bengal", "Persian"]) == "Bengal, Persian"
    assert i18n.sentences("Extracted 3 images.", "Skipped 1 file.") == "Extracted 3 images. Skipped 1 file."


def test_the_glossary_terms_replace_the_words_it_retires():
    """locales/glossary.csv names, per term, the words Chinese students would not use for it (issue 19: 训练记录
    for a run read as deleting a log, 滤波器 for conv filters, 离散程度 for std, 单图变换, an English "worker")."""
    import csv

    with open(ROOT / "locales" / "glossary.csv", encoding="utf-8") as fh:
        retired = {row["avoid"]: row["zh"] for row in csv.DictReader(fh) if row["avoid"]}
    assert {"训练记录", "滤波器", "离散程度", "单图变换"} <= set(retired)
    found = []
    for msg in read_catalog(po_path("zh")):
        for text in msg.string if isinstance(msg.string, tuple) else (msg.string,):
            found += [(word, retired[word], text) for word in retired if msg.id and word in text]
    assert not found, found[:10]
