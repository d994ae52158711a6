"""A message kept across a rerun: said by a callback or just before st.rerun(), shown where its place is drawn.

A callback runs before the script, and st.rerun() drops whatever the run drew: a message meant for the
user is kept in the session under a place name (`notify`) and drawn once by that place (`notices_ui`),
or on every run for `seconds` when a rerun from elsewhere must not swallow it (a wrong password).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import streamlit as st

KEPT = "_notices"  # place -> [Notice]


class Level(StrEnum):
    """How a kept message is drawn: one of Streamlit's alert boxes, or a toast."""

    SUCCESS = "success"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    TOAST = "toast"


@dataclass(frozen=True)
class Notice:
    text: str
    level: Level
    until: float = 0.0  # shown on every run until this time (time.time()); 0: shown once


def notify(where: str, text: str, level: Level = Level.INFO, seconds: float = 0.0, replace: bool = False) -> None:
    """Keep `text` for the place `where`: notices_ui(where) shows it once, or on every run for `seconds`.

    replace: it takes the place of the messages still kept there (the newest attempt's answer, not every one).
    """
    kept = st.session_state.setdefault(KEPT, {})
    earlier = [] if replace else kept.get(where, [])
    kept[where] = [*earlier, Notice(text, Level(level), time.time() + seconds if seconds else 0.0)]


def notices_ui(where: str) -> None:
    """Draw the messages kept for `where`, then forget those shown once and those whose time is up."""
    kept = st.session_state.get(KEPT, {})
    now = time.time()
    for notice in kept.pop(where, []):
        if notice.until and notice.until < now:
            continue
        draw = st.toast if notice.level == Level.TOAST else getattr(st, notice.level.value)
        draw(notice.text)
        if notice.until:
            kept.setdefault(where, []).append(notice)
