"""Runs in the UI: the runs list and picker, cached run records/predictions, thumbnails, live training display."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from core import runs, training
from core.images import ImageError, load_image_file
from core.settings import sub_dir
from ui.state import ACTIVE_RUN, runs_dir


def features_dir() -> Path:
    return sub_dir("features")


def list_runs_ui(show_warnings: bool = True) -> list[runs.RunInfo]:
    """All complete runs (newest first); a broken run folder becomes a warning, never a crash."""
    found, warnings = runs.list_runs(runs_dir())
    if show_warnings:
        for warning in warnings:
            st.warning(warning)
    return found


def run_label(run: runs.RunInfo) -> str:
    err = run.error_rate
    return f"{run.run_id[:8]} · {run.title}" + (f" · error {err:.1%}" if err is not None else "")


def run_picker_ui(key: str, label: str = "Active run") -> str | None:
    """Selectbox over stored runs that sets the session's active run; returns its id (or None)."""
    found = list_runs_ui(show_warnings=False)
    if not found:
        st.caption("No trained runs yet: train one on the **Training** page.")
        return None
    ids = [r.run_id for r in found]
    labels = {r.run_id: run_label(r) for r in found}
    current = st.session_state.get(ACTIVE_RUN)
    options = [None, *ids]
    chosen = st.selectbox(
        label,
        options,
        index=options.index(current) if current in options else 0,
        format_func=lambda rid: "ImageNet-pretrained (no run)" if rid is None else labels[rid],
        key=key,
    )
    if chosen != current:
        st.session_state[ACTIVE_RUN] = chosen
    return chosen


@st.cache_data(max_entries=32, show_spinner=False)
def run_predictions(run_dir: str, stamp: float, n_classes: int | None = None) -> dict | None:
    """The run's checked validation predictions (probs, targets); `stamp` (mtime) invalidates it.

    Raises runs.RecordError (a ValueError) when preds.npz is damaged or does not fit the run.
    """
    return runs.load_preds(Path(run_dir), n_classes)


def run_record(run_id: str) -> runs.RunInfo | None:
    """A stored run by id, or None (with the reason shown) when it is missing or broken."""
    path = runs_dir() / run_id
    try:
        return runs.RunInfo(run_id, path, runs.check_run(path))
    except (ValueError, OSError) as err:
        st.warning(f"Run {run_id} cannot be read: {err}")
        return None


@st.cache_data(max_entries=512, show_spinner=False)
def thumbnail(path: str, side: int = 160):
    """A small RGB image for grids, or None when the file is gone or unreadable."""
    try:
        image = load_image_file(Path(path), max_side=side).image.copy()
    except (ImageError, OSError, ValueError):
        return None
    image.thumbnail((side, side))
    return image


class LiveTraining:
    """Placeholders the trainer's events update: progress bar, live loss chart, per-epoch table."""

    def __init__(self, n_stages: int):
        self.status = st.empty()
        self.bar = st.progress(0.0, text="Preparing data and model…")
        self.chart = st.empty()
        self.table = st.empty()
        self.epochs: list[dict] = []
        self.batches: list[tuple[float, float]] = []
        self.n_stages = n_stages
        self.last_draw = 0.0

    def __call__(self, event: dict) -> None:
        kind = event["kind"]
        if kind == "extract":
            self.bar.progress(
                min(1.0, event["i"] / max(1, event["n"])), text=f"Extracting body features: {event['what']}"
            )
        elif kind == "stage":
            self.status.info(f"Stage {event['stage'] + 1}: {event['describe']}")
        elif kind == "batch":
            done = (event["epoch"] + event["iter"] / event["n_iter"]) / event["n_epoch"]
            x = len(self.epochs) + event["iter"] / event["n_iter"]
            self.batches.append((x, event["loss"]))
            self.bar.progress(min(1.0, done), text=f"epoch {event['epoch'] + 1}/{event['n_epoch']} · batch "
                              f"{event['iter']}/{event['n_iter']} · loss {event['loss']:.3f} · lr {event['lr']:.1e}")  # fmt: skip
            if time.perf_counter() - self.last_draw > 1.0:
                self.last_draw = time.perf_counter()
                self.chart.plotly_chart(training.loss_figure(self.epochs, self.batches), key=f"live_{x}")
        elif kind == "epoch":
            self.epochs.append(event["row"])
            self.chart.plotly_chart(training.loss_figure(self.epochs, self.batches), key=f"live_ep_{len(self.epochs)}")
            self.table.dataframe(training.epochs_table(self.epochs), hide_index=True)


@st.fragment(run_every=2.0)
def other_training_ui() -> None:
    """Shown while another tab trains in this data folder: its progress, refreshed every 2 s."""
    progress = runs.read_progress(runs_dir())
    if not runs.training_running(runs_dir()):
        st.success("The other training has finished: reload the page to see its run.")
        return
    st.info(
        f"Another tab is training **{(progress or {}).get('title', 'a run')}**. One training at a time per data folder."
    )
    last = (progress or {}).get("last") or {}
    if last.get("kind") == "batch":
        done = (last["epoch"] + last["iter"] / last["n_iter"]) / last["n_epoch"]
        st.progress(min(1.0, done), text=f"epoch {last['epoch'] + 1}/{last['n_epoch']} · loss {last['loss']:.3f}")
    epochs = (progress or {}).get("epochs") or []
    if epochs:
        st.dataframe(training.epochs_table(epochs), hide_index=True)
    if st.button("Ask it to stop", key="train_stop_other"):
        runs.request_stop(runs_dir())


SIDEBAR_RUN_KEY = "sidebar_run"


def sidebar_run_picker_ui() -> None:
    """The sidebar's model switcher: the active run, or none (the ImageNet-pretrained model).

    The sidebar is drawn on every run, so its widget state outlives page changes; it is synced from
    the active run before drawing and only writes back when the student changes it, so a run made
    active by a page (after training) is never overwritten by a stale selection.
    """
    found = list_runs_ui(show_warnings=False)
    if not found:
        return
    labels = {r.run_id: run_label(r) for r in found}
    options = [None, *labels]
    current = st.session_state.get(ACTIVE_RUN)
    st.session_state[SIDEBAR_RUN_KEY] = current if current in labels else None

    def changed() -> None:
        st.session_state[ACTIVE_RUN] = st.session_state[SIDEBAR_RUN_KEY]

    st.selectbox(
        "Switch model",
        options,
        format_func=lambda rid: "ImageNet-pretrained (no run)" if rid is None else labels[rid],
        key=SIDEBAR_RUN_KEY,
        on_change=changed,
    )
