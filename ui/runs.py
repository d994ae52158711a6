"""Runs in the UI: the runs list and picker, cached run records/predictions, thumbnails, live training display."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import streamlit as st

from core import quotas
from core.data import datasets
from core.i18n import N_, _, num, pct
from core.nets import models
from core.nets.schedules import lr_text
from core.settings import data_dir, sub_dir
from core.store import records, runs, training_lock
from core.store.records import EventKind
from core.teach import classroom
from core.teach.roster import markdown_safe
from core.train import curves, training
from core.train.features import shown_progress
from ui.auth import class_mode, identity, teacher_only
from ui.frame import background_training
from ui.jobs import queue_training_ui
from ui.state import ACTIVE_RUN, active_dataset, dataset_signature, runs_dir, scan


def features_dir() -> Path:
    return sub_dir("features")


def list_runs_ui(show_warnings: bool = True) -> list[runs.RunInfo]:
    """All complete runs (newest first); a broken run folder becomes a warning, never a crash."""
    found, warnings = runs.list_runs(runs_dir())
    who = identity()
    found = [r for r in found if classroom.run_visible(r.record.dataset.root, who, data_dir())]  # others' private
    if show_warnings:
        for warning in warnings:
            st.warning(warning)
    return found


def run_dataset_name(run: runs.RunInfo) -> str:
    """The name of the dataset a run was trained on ('?' for records that do not say)."""
    return run.record.dataset.name or "?"


def run_dataset_fingerprint(run: runs.RunInfo) -> str | None:
    """The fingerprint of the dataset a run was trained on (files, labels, split)."""
    return run.record.config.dataset or None


def run_label(run: runs.RunInfo) -> str:
    """One line per run for pickers: id, dataset, title, error rate."""
    err = run.error_rate
    text = f"{run.run_id[:8]} · {run_dataset_name(run)} · {run.title}"
    return text + (" · " + _("error {rate}").format(rate=pct(err, 1)) if err is not None else "")


def runs_table(found: list[runs.RunInfo], active: str | None) -> pd.DataFrame:
    """The Training page's runs table: one row per run, every cell text in the current language.

    st.table renders Markdown in its cells: a dataset's name and a run's title are escaped.
    """
    rows = [
        {
            _("run"): r.run_id,
            _("dataset"): markdown_safe(run_dataset_name(r)),
            _("title"): markdown_safe(r.title),
            _("error rate"): pct(r.error_rate, 1) if r.error_rate is not None else "",
            _("epochs"): num(len(r.record.epochs)),
            _("train time (s)"): num(sum(r.record.timings.values()), 1),
            _("active"): "✓" if active == r.run_id else "",
        }
        for r in found
    ]
    return pd.DataFrame(rows)


def runs_of_dataset(found: list[runs.RunInfo], fingerprint: str | None, keep: str | None = None) -> list[runs.RunInfo]:
    """The runs trained on this dataset, those whose record does not say, and `keep` (e.g. the active run)."""
    return [r for r in found if run_dataset_fingerprint(r) in (fingerprint, None) or r.run_id == keep]


def active_fingerprint() -> str | None:
    """The active dataset's fingerprint, or None when there is none (or it cannot be read)."""
    spec = active_dataset()
    if spec is None:
        return None
    try:  # quietly: the sidebar and the pages already say when the dataset cannot be read
        return scan(spec, dataset_signature(Path(spec.root))).fingerprint
    except (datasets.DatasetError, ValueError, OSError):
        return None


NO_RUN = "imagenet"  # the pickers' "no run" option: a None value would show as "Choose an option"


def _picker_ui(label: str, key: str, show_all: bool = False) -> str | None:
    """A selectbox over the active dataset's runs (all runs with show_all) that follows and sets the active run.

    Its state is synced from the active run before drawing and written back only by its on_change
    callback (which runs before the script), so the picker, the sidebar's "Model:" line and every
    page agree on the active run in the same run of the script.
    """
    found = list_runs_ui(show_warnings=False)
    current = _drop_unusable_active_run(found)
    if not found:
        return None
    shown = found if show_all else runs_of_dataset(found, active_fingerprint(), keep=current)
    labels = {r.run_id: run_label(r) for r in shown}
    st.session_state[key] = current if current in labels else NO_RUN

    def changed() -> None:
        chosen = st.session_state[key]
        st.session_state[ACTIVE_RUN] = None if chosen == NO_RUN else chosen

    st.selectbox(
        label,
        [NO_RUN, *labels],
        format_func=lambda rid: _("ImageNet-pretrained (no run)") if rid == NO_RUN else labels[rid],
        key=key,
        on_change=changed,
    )
    return current if current in labels else None


def _drop_unusable_active_run(found: list[runs.RunInfo]) -> str | None:
    """The active run, cleared when it is no longer a usable run here (deleted, broken, or private to another)."""
    current = st.session_state.get(ACTIVE_RUN)
    if current is not None and current not in {r.run_id for r in found}:
        st.session_state[ACTIVE_RUN] = current = None
    return current


def run_picker_ui(key: str, label: str | None = None) -> str | None:
    """Selectbox over stored runs that sets the session's active run; returns its id (or None)."""
    if not list_runs_ui(show_warnings=False):
        _drop_unusable_active_run([])
        st.caption(_("No trained runs yet: train one on the **Training** page."))
        return None
    return _picker_ui(label or _("Active run"), key)


@st.cache_data(max_entries=32, show_spinner=False)
def run_predictions(run_dir: str, stamp: float, n_classes: int | None = None) -> runs.Preds | None:
    """The run's checked validation predictions (probs, targets); `stamp` (mtime) invalidates it.

    Raises records.RecordError (a ValueError) when preds.npz is damaged or does not fit the run.
    """
    return runs.load_preds(Path(run_dir), n_classes)


def run_record(run_id: str) -> runs.RunInfo | None:
    """A stored run by id, or None (with the reason shown) when it is missing or broken."""
    path = runs_dir() / run_id
    try:
        return runs.RunInfo(run_id, path, records.check_run(path))
    except (ValueError, OSError) as err:
        st.warning(_("Run {run} cannot be read: {error}").format(run=run_id, error=err))
        return None


class LiveTraining:
    """Placeholders the trainer's events update: progress bar, live loss chart, per-epoch table."""

    def __init__(self, config: records.RunConfig):
        self.status = st.empty()
        self.bar = st.progress(0.0, text=_("Preparing data and model…"))
        self.chart = st.empty()
        self.table = st.empty()
        self.epochs: list[records.EpochRow] = []
        self.batches: list[tuple[float, float]] = []
        self.config = config
        self.last_draw = 0.0

    def __call__(self, event: records.TrainEvent) -> None:
        kind = event.kind
        if kind == EventKind.EXTRACT:
            self.bar.progress(
                min(1.0, (event.i or 0) / max(1, event.n or 0)),
                text=_("Extracting body features: {what}").format(what=shown_progress(event.what)),
            )
        elif kind == EventKind.STAGE:
            stage = event.stage or 0
            describe = self.config.stages[stage].describe(_) if stage < len(self.config.stages) else event.describe
            self.status.info(
                _("Stage {stage}/{n}: {describe}").format(stage=stage + 1, n=len(self.config.stages), describe=describe)
            )
        elif kind == EventKind.BATCH:
            x = len(self.epochs) + (event.iter or 0) / (event.n_iter or 1)
            self.batches.append((x, event.loss))
            text = _("epoch {epoch}/{n_epoch} · batch {iter}/{n_iter} · loss {loss} · lr {lr}").format(
                epoch=(event.epoch or 0) + 1,
                n_epoch=event.n_epoch,
                iter=event.iter,
                n_iter=event.n_iter,
                loss=num(event.loss or 0.0, 3),
                lr=lr_text(event.lr or 0.0),
            )
            self.bar.progress(event.fraction or 0.0, text=text)
            if time.perf_counter() - self.last_draw > 1.0:
                self.last_draw = time.perf_counter()
                self.chart.plotly_chart(curves.loss_figure(self.epochs, self.batches), key=f"live_{x}")
        elif kind == EventKind.EPOCH and event.row is not None:
            self.epochs.append(event.row)
            self.chart.plotly_chart(curves.loss_figure(self.epochs, self.batches), key=f"live_ep_{len(self.epochs)}")
            self.table.dataframe(curves.epochs_table(self.epochs), hide_index=True)


TRAIN_RUNNING = "train_running_here"  # this tab is training (its own lock is not "another training")
TRAIN_LAST = "train_last_run"  # the run whose chart and table the Training page shows
TRAIN_FLASH = "train_flash"  # (stage count, kind, text): the outcome of the last training, shown after the rerun
TRAIN_OVERLAY = "train_overlay"
STOPPED = N_("Stopped: nothing was saved. The buttons are ready for another run.")
BUSY_HELP = N_("Another tab is training in this data folder (its progress is shown at the top); one run at a time.")


def activate_run(run_id: str) -> None:
    """Make a run the active model and the one the Training page shows (an on_click callback)."""
    st.session_state[ACTIVE_RUN] = run_id
    st.session_state[TRAIN_LAST] = run_id


def flash_ui(n_stages: int) -> None:
    """The outcome of the last training of a run with n_stages stages (trained, opened, stopped), shown once."""
    flash = st.session_state.get(TRAIN_FLASH)
    if flash and flash[0] == n_stages:
        del st.session_state[TRAIN_FLASH]
        {"success": st.success, "warning": st.warning}[flash[1]](flash[2])


def train_ui(config: records.RunConfig, scan, retrain: bool = False) -> None:
    """Train (or open) a run with a live display and a Stop button, then rerun so the whole page shows it.

    A Stop click (like any click during a run) interrupts the script; the `finally` then leaves
    "Stopped: nothing was saved" for the next run of the page. Errors stay on the page as messages.
    """
    if class_mode():  # the worker trains it; the teacher queues it, a student asks the teacher for it
        if identity().is_teacher:
            queue_training_ui(config, scan.spec, retrain, (st.session_state.get("train_lrfind_history") or [None])[-1])
        else:
            from ui.requests import request_training_ui  # ui.requests builds on this module

            request_training_ui(config, scan)
        return
    n_stages = len(config.stages)
    st.session_state[TRAIN_RUNNING] = True
    st.button("⏹ " + _("Stop training"), key=f"train_stop_{config.run_id}", type="secondary",
              help=_("Stops after the current batch: nothing is saved."))  # fmt: skip
    live = LiveTraining(config)
    lr_record = (st.session_state.get("train_lrfind_history") or [None])[-1]
    outcome = "interrupted"
    try:
        with background_training():  # in the server process: cores − 1 torch threads, this thread niced
            result = training.train_run(
                config, scan, runs_dir(), features_dir(), on_event=live, lr_finder=lr_record, retrain=retrain
            )
        outcome = "done"
    except training_lock.TrainingBusy as err:
        outcome = "busy"
        st.warning(_("{error} Wait for it to finish (its progress is shown above).").format(error=err))
    except training_lock.TrainingStopped:
        pass  # the Stop of another tab (or of this one, through the stop file)
    except (records.ConfigError, models.WeightsUnavailable, quotas.QuotaError) as err:  # QuotaError: a full disk
        outcome = "error"
        st.error(str(err))
    finally:
        st.session_state[TRAIN_RUNNING] = False
        if outcome == "interrupted":
            st.session_state[TRAIN_FLASH] = (n_stages, "warning", _(STOPPED))
    if outcome == "interrupted":
        st.rerun()
    if outcome != "done":
        return
    rid = result.run.run_id
    activate_run(rid)
    if TRAIN_OVERLAY in st.session_state:  # the overlay widget keeps its own selection: put the new run in it
        st.session_state[TRAIN_OVERLAY] = [rid, *(i for i in st.session_state[TRAIN_OVERLAY] if i != rid)][:4]
    done = _("Opened the stored run {run} (now the active model).") if result.reused else None
    done = done or _("Trained and stored run {run} (now the active model).")
    st.session_state[TRAIN_FLASH] = (n_stages, "success", done.format(run=rid))
    st.rerun()  # the whole page (and the sidebar) from the top: buttons, stage 2, runs list, overlay


def progress_title(progress: training_lock.TrainProgress | None) -> str:
    """The title of the training a progress file describes, in the current language where its config says."""
    return (progress.shown_title() if progress is not None else "") or _("a run")


@st.fragment(run_every=2.0)
def other_training_ui() -> None:
    """Shown while another tab trains in this data folder: its progress, refreshed every 2 s."""
    progress = training_lock.read_progress(runs_dir())
    if not training_lock.training_running(runs_dir()):
        st.success(_("The other training has finished: reload the page to see its run."))
        return
    st.info(
        _("Another tab is training **{title}**. One training at a time per data folder.").format(
            title=progress_title(progress)
        )
    )
    last = progress.last if progress is not None else None
    if last is not None and last.kind == EventKind.BATCH:
        text = _("epoch {epoch}/{n_epoch} · loss {loss}").format(
            epoch=(last.epoch or 0) + 1, n_epoch=last.n_epoch, loss=num(last.loss or 0.0, 3)
        )
        st.progress(last.fraction or 0.0, text=text)
    if progress is not None and progress.epochs:
        st.dataframe(curves.epochs_table(progress.epochs), hide_index=True)
    if st.button(_("Ask it to stop"), key="train_stop_other") and teacher_only("stop"):
        training_lock.request_stop(runs_dir())


SIDEBAR_RUN_KEY = "sidebar_run"


def sidebar_run_picker_ui() -> None:
    """The sidebar's model switcher: the active run, or none (the ImageNet-pretrained model)."""
    _picker_ui(_("Switch model"), SIDEBAR_RUN_KEY)
