"""Translations: catalogues complete and compiled, languages resolved, numbers and plurals per language."""

import gettext
import subprocess
import sys
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

    from core import exploration

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
    from core import features
    from core.job_records import JobEvent

    reported = features.TRAIN_VIEW.format(view=1, views=2)  # what core.features reports, in any language
    event = JobEvent(kind="extract", what=reported, i=3, n=10)
    try:
        i18n.set_language("zh")
        shown = features.shown_progress(reported)
        assert "1/2" in shown
        assert shown != reported and shown == i18n._(features.TRAIN_VIEW).format(view=1, views=2)
        assert features.shown_progress(features.VALID_IMAGES) == i18n._(features.VALID_IMAGES) != features.VALID_IMAGES
        assert features.shown_progress(reported) in event.text() and "training images" not in event.text()
    finally:
        i18n.set_language("en")
    assert features.shown_progress(reported) == "training images, view 1/2"
