"""Live pages in class mode: a tab reruns by itself when something it shows changed elsewhere (core.store.live).

app.py notes the stamps each full run starts from (`note_drawn`); the sidebar's polling fragment
(ui.jobs.jobs_status_ui, every POLL_SECONDS) calls `rerun_if_changed`, which costs one `os.stat` per
channel and reruns the whole page only when a stamp moved. Students watch the CLASS channel; the
teacher's Class page also watches ROSTER (students' classes, names and requests).
"""

from __future__ import annotations

import streamlit as st

from core.settings import data_dir
from core.store import live
from core.store.live import Channel

DRAWN_KEY = "_live_drawn"  # the stamps this tab's page was last drawn from
CHANNELS_KEY = "_live_channels"  # the channels the current page watches


def note_drawn(channels: tuple[Channel, ...] = (Channel.CLASS,)) -> None:
    """Call at the start of a full run, before reading what the page shows: the stamps it is drawn from."""
    st.session_state[CHANNELS_KEY] = tuple(channels)
    st.session_state[DRAWN_KEY] = live.versions(data_dir(), tuple(channels))


def changed() -> bool:
    """Whether a watched stamp moved since the page was drawn (one stat per channel)."""
    channels = st.session_state.get(CHANNELS_KEY)
    if not channels:
        return False
    return live.versions(data_dir(), channels) != st.session_state.get(DRAWN_KEY)


def rerun_if_changed() -> None:
    """From a polling fragment: rerun the whole page when something it shows changed (else nothing)."""
    if changed():
        st.rerun(scope="app")
