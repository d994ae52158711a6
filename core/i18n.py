"""Translations of everything the app shows: gettext catalogues in locales/, formats from Babel.

No Streamlit here. `translator(lang)` gives one language's functions; the current language of a
script run is a context variable that `ui/i18n.py` sets at the start of every run, so core helpers
that build figures and tables can call `_()` without a language argument. Outside Streamlit
(tests, a Python shell) the language is English unless `set_language()` says otherwise.

Marking strings (what `pybabel extract` looks for, see babel.cfg and `make i18n`):
- `_("Text with {name}").format(name=value)`: never an f-string inside `_()`.
- `n_("{n} image", "{n} images", n).format(n=...)`: plurals (Chinese has one form).
- `N_("Text")`: marks a module-level constant for extraction; translate it with `_()` when shown.
- `p_("navigation", "Class")`: one English word with two meanings (the Class page, a class of images).
"""

from __future__ import annotations

import gettext
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

import pandas as pd
from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, format_percent

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
DEFAULT_LANGUAGE = "en"
# language code -> its name in that language (the sidebar picker shows these)
LANGUAGES = {"en": "English", "zh": "简体中文"}
# the Babel locale that formats numbers and dates for each language
BABEL_LOCALES = {"en": "en_US", "zh": "zh_Hans_CN"}


@dataclass(frozen=True)
class Translator:
    """One language: gettext/ngettext from its compiled catalogue, numbers and dates from Babel."""

    lang: str
    translations: gettext.NullTranslations

    @property
    def locale(self) -> Locale:
        return Locale.parse(BABEL_LOCALES.get(self.lang, self.lang))

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations.ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        return self.translations.pgettext(context, message)

    def number(self, value: float, digits: int | None = None) -> str:
        """A number with the language's grouping and decimal signs (digits: fixed decimals)."""
        fmt = None if digits is None else "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=fmt, locale=self.locale)

    def percent(self, value: float, digits: int = 0) -> str:
        """0.0512 -> '5.12%' (digits decimals)."""
        fmt = "#,##0" + ("." + "0" * digits if digits else "") + "%"
        return format_percent(value, format=fmt, locale=self.locale)

    def date(self, value: date | datetime, format: str = "medium") -> str:
        if isinstance(value, datetime):
            return format_datetime(value, format=format, locale=self.locale)
        return format_date(value, format=format, locale=self.locale)


def normalise_language(code: str | None) -> str | None:
    """'zh', 'zh-CN', 'zh_Hans', 'EN-us' -> a supported code ('zh', 'en'); None when unsupported."""
    if not code or not isinstance(code, str):
        return None
    base = code.strip().replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


@lru_cache(maxsize=8)
def translator(lang: str) -> Translator:
    """The translator of `lang` (an unsupported code gets English, the language of the source)."""
    lang = normalise_language(lang) or DEFAULT_LANGUAGE
    if lang == DEFAULT_LANGUAGE:
        return Translator(lang, gettext.NullTranslations())
    translations = gettext.translation(DOMAIN, localedir=str(LOCALES_DIR), languages=[lang], fallback=True)
    return Translator(lang, translations)


_current: ContextVar[str | None] = ContextVar("petlab_language", default=None)
# Where the language comes from when this thread has not set one: ui/i18n.py installs a function
# reading the session (widget callbacks run before the script, in a thread that has not set it yet).
_fallback: list[Callable[[], str | None]] = []


def set_language(lang: str | None) -> str:
    """Make `lang` the language of this thread's run (ui/i18n.py calls it first thing); returns the code used."""
    code = normalise_language(lang) or DEFAULT_LANGUAGE
    _current.set(code)
    return code


def use_fallback(get_language: Callable[[], str | None]) -> None:
    """Install the function asked for the language when the running thread has not set one."""
    _fallback[:] = [get_language]


def current() -> Translator:
    lang = _current.get()
    if lang is None and _fallback:
        lang = _fallback[0]()
    return translator(lang or DEFAULT_LANGUAGE)


def _(message: str) -> str:
    """The message in the current language."""
    return current().gettext(message)


def n_(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for n, in the current language (then `.format(n=...)`)."""
    return current().ngettext(singular, plural, n)


def p_(context: str, message: str) -> str:
    """The message in the current language, told apart from the same English words by context."""
    return current().pgettext(context, message)


def N_(message: str) -> str:
    """Marks a constant for extraction only; translate it with `_()` where it is shown."""
    return message


def translated_columns(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of table with its column headers translated (each header marked with N_() where it is made)."""
    return table.rename(columns={c: _(c) for c in table.columns if isinstance(c, str)})


def num(value: float, digits: int | None = None) -> str:
    """A number formatted for the current language."""
    return current().number(value, digits)


def pct(value: float, digits: int = 0) -> str:
    """A share formatted as a percentage for the current language."""
    return current().percent(value, digits)


FULL_WIDTH_END = "。！？；：，、）"  # after these Chinese punctuation marks the next sentence follows without a space


def sentences(*parts: str) -> str:
    """Sentences one after another: a space between them, none after full-width punctuation ("。 最可能是")."""
    joined = ""
    for part in (p for p in parts if p):
        joined += part if not joined or joined[-1] in FULL_WIDTH_END else " " + part
    return joined


def listed(items: Iterable[object]) -> str:
    """Items of a list inside a sentence, separated as the language does: "a, b, c"; in Chinese "a、b、c"."""
    return _(", ").join(str(item) for item in items)


def shown_apart(
    value: float, line: float, write: Callable[[float, int], str] = num, digits: int = 2, most: int = 6
) -> tuple[str, str]:
    """value and the line it is compared with, written with `digits` decimals or more until they differ.

    A reason reading "entropy 0.60 > 0.60" compares numbers the reader cannot see: 0.603 and 0.6.
    `write` is num or pct (value, digits) -> text; both get the same number of decimals.
    """
    while digits < most and value != line and write(value, digits) == write(line, digits):
        digits += 1
    return write(value, digits), write(line, digits)
