"""How progress is drawn: one TrainEvent (a training's batch, stage or epoch, an LR finder, a feature extraction,
a patch index) becomes one bar with one line of text, wherever the work runs: in this tab (its events as they
come), in the worker (the job record's last event) or in another tab (the progress file's last event).

The line itself is core's (core.teach.job_records.event_text, in the tab's language); this module is the only
one that turns events into bars, charts and tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

import streamlit as st

from core.i18n import _
from core.store import records
from core.store.records import EpochRow, EventKind, TrainEvent
from core.teach.job_records import JobRecord, event_text
from core.train import curves


def event_bar(event: TrainEvent | None, config: records.RunConfig | None = None, waiting: str = "", slot=None) -> None:
    """Draw one event as a progress bar (or update `slot`, a bar already drawn). No event yet: `waiting` at 0."""
    fraction = event.fraction if event is not None else None
    text = event_text(event, config) if event is not None else waiting or _("starting…")
    (slot or st).progress(fraction if fraction is not None else 0.0, text=text)


def epochs_ui(epochs: list[EpochRow]) -> None:
    """The per-epoch table of a training (train and valid loss, error rate, time), once it has one epoch."""
    if epochs:
        st.dataframe(curves.epochs_table(epochs), hide_index=True)


def job_bar(record: JobRecord, waiting: str = "") -> None:
    """A job's progress where it runs elsewhere (the worker or another tab): its record's last event."""
    event_bar(record.last, record.config, waiting)


class LiveBar:
    """The bar of a short job run in this tab (an LR finder's extraction, a patch index), fed its events.

    Pass it as ui.executor.run_job_ui's `live`: called, it draws the bar and returns what sees each event;
    `clear()` removes the bar once the job has ended.
    """

    def __init__(self, waiting: str, kinds: Collection[EventKind]):
        self.waiting = waiting
        self.kinds = frozenset(kinds)
        self.bar = None

    def __call__(self) -> Callable[[TrainEvent], None]:
        self.bar = st.progress(0.0, text=self.waiting)
        return self.on_event

    def on_event(self, event: TrainEvent) -> None:
        if event.kind in self.kinds and self.bar is not None:
            event_bar(event, slot=self.bar)

    def clear(self) -> None:
        if self.bar is not None:
            self.bar.empty()


class LiveTraining:
    """A training run in this tab: the stage line, the progress bar, the live loss chart (batches as they come,
    at most one redraw a second) and the per-epoch table, all from the trainer's events."""

    def __init__(self, config: records.RunConfig):
        self.status = st.empty()
        self.bar = st.progress(0.0, text=_("Preparing data and model…"))
        self.chart = st.empty()
        self.table = st.empty()
        self.epochs: list[EpochRow] = []
        self.batches: list[tuple[float, float]] = []
        self.config = config
        self.last_draw = 0.0

    def __call__(self, event: TrainEvent) -> None:
        kind = event.kind
        if kind in (EventKind.EXTRACT, EventKind.BATCH):
            event_bar(event, self.config, slot=self.bar)
        if kind == EventKind.STAGE:
            stage = event.stage or 0
            describe = self.config.stages[stage].describe(_) if stage < len(self.config.stages) else event.describe
            self.status.info(
                _("Stage {stage}/{n}: {describe}").format(stage=stage + 1, n=len(self.config.stages), describe=describe)
            )
        elif kind == EventKind.BATCH:
            x = len(self.epochs) + (event.iter or 0) / (event.n_iter or 1)
            self.batches.append((x, event.loss))
            if time.perf_counter() - self.last_draw > 1.0:
                self.last_draw = time.perf_counter()
                self.chart.plotly_chart(curves.loss_figure(self.epochs, self.batches), key=f"live_{x}")
        elif kind == EventKind.EPOCH and event.row is not None:
            self.epochs.append(event.row)
            self.chart.plotly_chart(curves.loss_figure(self.epochs, self.batches), key=f"live_ep_{len(self.epochs)}")
            self.table.dataframe(curves.epochs_table(self.epochs), hide_index=True)
