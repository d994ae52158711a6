"""Heavy per-image work (occlusion, projections, patch index) in a few server-wide slots, with a place in line:
the teacher's first, then the students' in turns (core.teach.slots)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from core.i18n import _, n_
from core.nets.models import thread_ceiling
from core.teach.slots import WorkSlots
from ui.auth import identity

# One at a time on a 2-core laptop: each of these already uses every core through torch.
HEAVY = WorkSlots(max(1, (os.cpu_count() or 2) // 2))


@contextmanager
def heavy_work_ui(what: str, slots: WorkSlots = HEAVY) -> Iterator[None]:
    """Run the block in one of the server's heavy-work slots; while this tab waits, show its place in line.

    `what` names the work in the current language (callers pass `_("The occlusion map")`).
    """
    note = None

    def tell(place: int) -> None:
        nonlocal note
        if note is None:
            note = st.empty()
        ahead = _("you are next") if place == 1 else n_("{n} ahead of you", "{n} ahead of you", place - 1)
        jobs = n_("{n} such job at a time", "{n} such jobs at a time", slots.limit)
        note.info(
            _("⏳ {what} waits for the server ({jobs}, {ahead}).").format(
                what=what, jobs=jobs.format(n=slots.limit), ahead=ahead.format(n=place - 1)
            )
        )

    who = identity()  # the owner: the teacher's work first, then students in turns (by computer)
    with slots.slot(on_wait=tell, owner=who.client, first=who.is_teacher):
        if note is not None:
            note.empty()
        with thread_ceiling(max(1, (os.cpu_count() or 1) // slots.limit)):  # the slot's share of the cores
            yield
