"""Heavy per-image work (occlusion, projections, patch index) in a few server-wide slots, with a place in line."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from core.models import thread_ceiling
from core.slots import WorkSlots

# One at a time on a 2-core laptop: each of these already uses every core through torch.
HEAVY = WorkSlots(max(1, (os.cpu_count() or 2) // 2))


@contextmanager
def heavy_work_ui(what: str, slots: WorkSlots = HEAVY) -> Iterator[None]:
    """Run the block in one of the server's heavy-work slots; while this tab waits, show its place in line."""
    note = None

    def tell(place: int) -> None:
        nonlocal note
        if note is None:
            note = st.empty()
        ahead = "you are next" if place == 1 else f"{place - 1} ahead of you"
        note.info(f"⏳ {what} waits for the server ({slots.limit} such job at a time, {ahead}).")

    with slots.slot(on_wait=tell):
        if note is not None:
            note.empty()
        with thread_ceiling(max(1, (os.cpu_count() or 1) // slots.limit)):  # the slot's share of the cores
            yield
