"""Keep every visit inside app.py's frame (navigation, sidebar), with the torch threads one tab's run may use."""

from __future__ import annotations

import os

import streamlit as st
import torch
from streamlit.runtime.pages_manager import PagesManager

from ui.i18n import apply_language

THREADS_ENV_VAR = "PETLAB_INTERACTIVE_THREADS"


def interactive_threads() -> int:
    """Torch intra-op threads for one tab's script run: 1 unless $PETLAB_INTERACTIVE_THREADS says more.

    Thirty tabs each running a forward on every core oversubscribe the CPU: the OpenMP threads spin
    and wait for each other (bench/class_load.py at 10 students: 0.36 -> 0.12 s server CPU per prediction
    with one thread per run). With one thread each, torch (which releases the interpreter lock) runs
    several tabs' forwards side by side on the cores. Training and the heavy-work slots set their own.
    """
    try:
        return max(1, int(os.environ.get(THREADS_ENV_VAR, "1")))
    except ValueError:
        return 1


def ensure_app_frame() -> None:
    """Cap this run's torch threads; re-run through app.py when Streamlit started a page without it; set the language.

    On a fresh server, until some session has run app.py's `st.navigation`, Streamlit treats the
    `pages/` folder the pre-`st.navigation` way and runs a deep-linked page (e.g. /prediction)
    directly, without the sidebar or our sections. Clearing that compatibility flag and re-running
    makes Streamlit execute app.py, whose navigation then opens the same page.
    """
    torch.set_num_threads(interactive_threads())  # per thread with OpenMP: this script run only
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
    apply_language()  # every page, also one run on its own (AppTest): ?lang=, the picker, the browser
