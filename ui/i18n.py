"""The language of this browser tab: ?lang=zh / ?lang=en, else the picker's choice, else the browser's, else English."""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.i18n import DEFAULT_LANGUAGE, LANGUAGES, _, current, normalise_language, set_language, use_fallback
from ui.tab_store import recall, remember

LANG_PARAM = "lang"  # ?lang=zh: the link a teacher hands out
LANG_KEY = "ui_lang"  # non-widget key: the language chosen by the link or the picker (also kept in the tab's store)
PICKER_KEY = "ui_lang_picker"
USED_KEY = "_ui_lang_used"  # the language the last run of this session used (for callbacks, see below)


def _session_language() -> str | None:
    """The session's language for code running outside the script body (a widget callback runs first)."""
    if get_script_run_ctx(suppress_warning=True) is None:
        return None
    return st.session_state.get(USED_KEY)


use_fallback(_session_language)


def browser_language() -> str | None:
    """The browser's preferred language (navigator.language, e.g. "zh-CN"), or None."""
    try:
        return st.context.locale
    except (AttributeError, RuntimeError):
        return None


def chosen_language() -> str | None:
    """The language asked for explicitly (URL, then this tab's picker choice), or None."""
    asked = normalise_language(st.query_params.get(LANG_PARAM))
    if asked is not None:
        return asked
    return normalise_language(st.session_state.get(LANG_KEY)) or normalise_language(recall(LANG_KEY))


def apply_language() -> str:
    """Decide this run's language and make it current for core.i18n; call it before drawing anything.

    An explicit choice (?lang= or the picker) is kept in the session, in the tab's store (reloads)
    and written back to the URL (a page change drops it; a copied link keeps it). Without one the
    browser's language (st.context.locale) decides, else English.
    """
    lang = chosen_language()
    if lang is not None:
        st.session_state[LANG_KEY] = lang
        remember(LANG_KEY, lang)
        if st.query_params.get(LANG_PARAM) != lang:
            st.query_params[LANG_PARAM] = lang
    else:
        lang = normalise_language(browser_language()) or DEFAULT_LANGUAGE
    st.session_state[USED_KEY] = lang
    return set_language(lang)


def _on_pick() -> None:
    lang = normalise_language(st.session_state.get(PICKER_KEY)) or DEFAULT_LANGUAGE
    st.session_state[LANG_KEY] = lang
    remember(LANG_KEY, lang)
    st.query_params[LANG_PARAM] = lang
    set_language(lang)


def _css_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def builtin_texts_css() -> str:
    """CSS that shows Streamlit's own widget texts, which Streamlit has no setting for, in the current language;
    empty in English. The file uploader's "Upload" button and "200MB per file" limit; the camera's permission
    line ("This app would like to use your camera. Learn how to allow access.") and its Take Photo / Clear
    photo button (the clear button is the one with an icon)."""
    if current().lang == DEFAULT_LANGUAGE:
        return ""
    zone = '[data-testid="stFileUploaderDropzone"]'
    camera, button = '[data-testid="stCameraInputWebcamComponent"]', '[data-testid="stCameraInputButton"]'
    texts = {  # (outside the f-strings: pybabel reads no _() inside one)
        "upload": _("Upload"),
        "limit": _("{size} MB per file").format(size=st.get_option("server.maxUploadSize")),
        "ask": _("This app would like to use your camera."),
        "how": _("Learn how to allow access."),
        "take": _("Take Photo"),
        "clear": _("Clear photo"),
    }
    css = {name: _css_text(text) for name, text in texts.items()}
    return (
        f'{zone} button [data-testid="stMarkdownContainer"] p{{font-size:0}}'
        f'{zone} button [data-testid="stMarkdownContainer"] p::after{{content:{css["upload"]};font-size:1rem}}'
        f"{zone} [data-testid=stFileUploaderDropzoneInstructions] span{{font-size:0}}"
        f"{zone} [data-testid=stFileUploaderDropzoneInstructions] span::after{{content:{css['limit']};font-size:0.875rem}}"
        f"{camera} p{{font-size:0}}"
        f"{camera} p::before{{content:{css['ask']};font-size:1rem}}"
        f"{camera} p a::after{{content:{css['how']};font-size:1rem}}"
        f"{button}{{font-size:0}}"
        f"{button}:not(:has(svg))::after{{content:{css['take']};font-size:1rem}}"
        f"{button}:has(svg)::after{{content:{css['clear']};font-size:1rem}}"
    )


def language_picker_ui() -> str:
    """The sidebar's language switch (and Streamlit's own widget texts in that language); returns the language code."""
    lang = current().lang
    if css := builtin_texts_css():
        st.html(f"<style>{css}</style>")  # style only: no space taken in the page
    st.session_state[PICKER_KEY] = lang  # before the widget: it always shows the language in use
    st.selectbox(
        "🌐 " + _("Language"),
        list(LANGUAGES),
        format_func=LANGUAGES.get,
        key=PICKER_KEY,
        on_change=_on_pick,
    )
    return lang
