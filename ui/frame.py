"""Keep every visit inside app.py's frame (navigation, sidebar)."""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from ui.i18n import apply_language


def ensure_app_frame() -> None:
    """Re-run through app.py when Streamlit started a page without it; then set this run's language.

    On a fresh server, until some session has run app.py's `st.navigation`, Streamlit treats the
    `pages/` folder the pre-`st.navigation` way and runs a deep-linked page (e.g. /prediction)
    directly, without the sidebar or our sections. Clearing that compatibility flag and re-running
    makes Streamlit execute app.py, whose navigation then opens the same page.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
    apply_language()  # every page, also one run on its own (AppTest): ?lang=, the picker, the browser
