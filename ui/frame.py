"""Keep every visit inside app.py's frame (navigation, sidebar), with the torch threads one tab's run may use."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from core.nets.models import cap_thread, thread_ceiling
from ui.i18n import apply_language
from ui.uploads import install_upload_limits

THREADS_ENV_VAR = "PETLAB_INTERACTIVE_THREADS"
TRAINING_NICE = 10  # as the worker's (core/teach/worker.py): the scheduler favours the interactive tabs' threads


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


def cap_threads() -> int:
    """Cap the torch threads of the running script thread to interactive_threads(); returns the cap."""
    # per thread with OpenMP: this script run only; a ceiling, so pick_device() (learners, LR finder) keeps it
    return cap_thread(interactive_threads())


def interactive_fragment(func: Callable) -> Callable:
    """`st.fragment` whose reruns keep the interactive thread cap.

    A fragment rerun runs only the fragment, in a fresh script thread that has not been through
    ensure_app_frame(): without the cap its forwards would take every core again. (Its language
    comes from the session: core.i18n's fallback, see ui/i18n.py.)
    """

    @functools.wraps(func)
    def capped(*args, **kwargs):
        cap_threads()
        return func(*args, **kwargs)

    return st.fragment(capped)


def training_threads(cores: int | None = None) -> int:
    """Torch threads for a training in the server process: every core but one (at least one)."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores - 1)


def lower_thread_priority(nice: int = TRAINING_NICE) -> bool:
    """Raise this thread's nice value (only this thread's: Linux schedules threads one by one) to at least nice.

    Threads it starts afterwards (torch's OpenMP pool) inherit it. An unprivileged process cannot
    lower it again, so the thread keeps it until it ends. False where it cannot be done (not Linux).
    """
    if not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def background_training() -> Iterator[int]:
    """Run a laptop-mode training (in this script thread, in the server process) below the other tabs.

    Torch gets cores − 1 threads (pick_device stays under the ceiling) and the thread nice 10, as
    class mode's worker process has: without it, fastai's loop took every core and students' predictions
    waited ~2× longer (bench/README.md, Class load). Yields the thread count; the interactive cap is
    back after the block.
    """
    threads = training_threads()
    lower_thread_priority()
    with thread_ceiling(threads):
        yield threads
    cap_threads()


def ensure_app_frame() -> None:
    """Cap this run's torch threads; re-run through app.py when Streamlit started a page without it; set the language.

    On a fresh server, until some session has run app.py's `st.navigation`, Streamlit treats the
    `pages/` folder the pre-`st.navigation` way and runs a deep-linked page (e.g. /prediction)
    directly, without the sidebar or our sections. Clearing that compatibility flag and re-running
    makes Streamlit execute app.py, whose navigation then opens the same page.
    """
    cap_threads()
    install_upload_limits()  # once per server process: uploads held in memory are bounded per tab and in all
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
    apply_language()  # every page, also one run on its own (AppTest): ?lang=, the picker, the browser
