"""Training in the UI: whether this dataset can train, the stages' Train buttons, a run trained as a job with its live
display and Stop, the outcome after the rerun, another tab's run."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from core.data.datasets import DatasetScan, training_refusal
from core.i18n import N_, _
from core.store import records, runs, training_lock
from core.store.runs import RunInfo
from core.teach.job_records import JobStatus
from core.train.lesson import LessonSettings
from ui.auth import identity, teacher_only
from ui.executor import run_job_ui, runs_here
from ui.jobs import queued_ui, submit_job
from ui.notices import Level, notices_ui, notify
from ui.progress import LiveTraining, epochs_ui, event_bar
from ui.requests import request_training_ui
from ui.runs import TRAIN_OVERLAY, activate_run, run_label
from ui.state import runs_dir, scan_active
from ui.tab_store import stop_page

TRAIN_RUNNING = "train_running_here"  # this tab is training (its own lock is not "another training")
LR_HISTORY = "train_lrfind_history"  # the LR-finder curves this tab shows (ui.lr_finder); the newest goes with a run
STOPPED = N_("Stopped: nothing was saved. The buttons are ready for another run.")
BUSY_HELP = N_("Another tab is training in this data folder (its progress is shown at the top); one run at a time.")


def outcome_place(n_stages: int) -> str:
    """The notice place (ui.notices) of the last training's outcome for a run of n_stages stages: its stage's section."""
    return f"train_stage{n_stages}"


def outcome_ui(n_stages: int) -> None:
    """The outcome of the last training of a run with n_stages stages (trained, opened, stopped), shown once."""
    notices_ui(outcome_place(n_stages))


def train_ui(config: records.RunConfig, scan: DatasetScan, retrain: bool = False) -> None:
    """Train (or open) a run as a job: run here, with a live display and a Stop button, then rerun so the whole
    page shows it; queued for the worker, say where it stands. A student in class mode asks the teacher.

    A Stop click (like any click during a run) interrupts the script: the job is recorded stopped, and the
    `finally` leaves "Stopped: nothing was saved" for the next run of the page. Errors stay on the page.
    """
    who = identity()
    if who.class_mode and not who.is_teacher:  # who may: the teacher trains, a student asks for it
        request_training_ui(config, scan)
        return
    n_stages = len(config.stages)
    lr_record = (st.session_state.get(LR_HISTORY) or [None])[-1]
    record = None
    try:
        record = run_job_ui(lambda work: submit_job(config, scan.spec, retrain, lr_record, work), scan=scan,
                            live=lambda: _live_ui(config))  # fmt: skip
    finally:
        if st.session_state.get(TRAIN_RUNNING) and record is None:  # interrupted while it ran here
            notify(outcome_place(n_stages), _(STOPPED), Level.WARNING)
        st.session_state[TRAIN_RUNNING] = False
    if record is None:
        return  # refused: the reason is on the page
    if record.active:
        queued_ui(record)  # the worker trains it, also with this tab closed
        return
    if record.status == JobStatus.STOPPED:  # the Stop of another tab (or of this one, through the stop file)
        notify(outcome_place(n_stages), _(STOPPED), Level.WARNING)
        st.rerun()
    if record.status != JobStatus.DONE or not record.run_id:
        st.error(record.shown_error())
        return
    rid = record.run_id
    activate_run(rid)
    if TRAIN_OVERLAY in st.session_state:  # the overlay widget keeps its own selection: put the new run in it
        st.session_state[TRAIN_OVERLAY] = [rid, *(i for i in st.session_state[TRAIN_OVERLAY] if i != rid)][:4]
    done = _("Opened the stored run {run} (now the active model).") if record.reused else None
    done = done or _("Trained and stored run {run} (now the active model).")
    notify(outcome_place(n_stages), done.format(run=rid), Level.SUCCESS)
    st.rerun()  # the whole page (and the sidebar) from the top: buttons, stage 2, runs list, overlay


def _live_ui(config: records.RunConfig) -> LiveTraining:
    """A training run here: its Stop button and live display (this tab's own lock is not "another training")."""
    st.session_state[TRAIN_RUNNING] = True
    st.button("⏹ " + _("Stop training"), key=f"train_stop_{config.run_id}", type="secondary",
              help=_("Stops after the current batch: nothing is saved."))  # fmt: skip
    return LiveTraining(config)


def training_busy() -> bool:
    """Whether the Train buttons wait: trainings run here (a laptop) and another one holds this data folder.
    (In class mode the worker trains one job after another: queueing goes on.)"""
    return runs_here() and training_lock.training_running(runs_dir())


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
    if progress is not None:
        event_bar(progress.last, progress.config)
        epochs_ui(progress.epochs)
    if st.button(_("Ask it to stop"), key="train_stop_other") and teacher_only("stop"):
        training_lock.request_stop(runs_dir())


def trainable_scan_ui() -> DatasetScan:
    """The active dataset's scan when it can train; otherwise say why (core's checks, with the numbers) and end
    the page there."""
    scan = scan_active()
    if scan is None or scan.n_images == 0:
        st.info(_("Choose a dataset on the **Data** page first."))
        stop_page()
    refused = training_refusal(scan)  # one class, no validation image, a class with no training image
    if refused is not None:
        st.error(refused.message, icon="⛔")
        st.caption(_("Change the dataset or add photos on the **Data** page: this page opens when it can train."))
        stop_page()
    return scan


def busy_help() -> str | None:
    """Why the Train buttons wait (their help text), with the other training's progress; None when they may go."""
    if not training_busy():
        return None
    if not st.session_state.get(TRAIN_RUNNING):
        other_training_ui()
    return _(BUSY_HELP)


def stage1_ui(config1: records.RunConfig, existing: RunInfo | None, fast: bool, scan: DatasetScan,
              busy: str | None) -> None:  # fmt: skip
    """Stage 1's outcome and buttons: Open and Retrain a stored run (trained with Fast or the full way), or Train."""
    outcome_ui(1)
    c1, c2 = st.columns(2)
    if existing is None:
        if c1.button("▶ " + _("Train stage 1 (frozen)"), type="primary", key="train_go1", disabled=bool(busy),
                     help=busy):  # fmt: skip
            train_ui(config1, scan)
        return
    c1.success(_("Already trained: {run}").format(run=run_label(existing)))
    if config1.stages[0].fast != fast:  # a full fastai run of these settings (`make prepare`) counts, and the other way
        c1.caption(
            _("Trained on cached body features: stage 2 continues from it.")
            if config1.stages[0].fast
            else _(
                "Trained the full fastai way (as `make prepare` does), not on cached features: stage 2 continues from it."
            )
        )
    c1.button(_("Open it"), key="train_open1", on_click=activate_run, args=(existing.run_id,))
    if c2.button(_("Retrain anyway"), key="train_retrain1", disabled=bool(busy), help=busy):
        train_ui(config1, scan, retrain=True)


def stage2_ui(settings: LessonSettings, config1: records.RunConfig, scan: DatasetScan, busy: str | None) -> None:
    """Stage 2 on top of stage 1 as stored (Fast or the full way): its outcome, Open or Train, and the mistake."""
    stage1 = config1.stages[0]
    config2 = replace(config1, stages=(stage1, settings.stage2()))
    mistake = replace(config1, stages=(stage1, settings.mistake()))
    outcome_ui(2)
    c1, c2 = st.columns(2)
    done2 = runs.find_run(runs_dir(), config2)
    if done2:
        c1.success(_("Already trained: {run}").format(run=run_label(done2)))
        c1.button(_("Open it"), key="train_open2", on_click=activate_run, args=(done2.run_id,))
    elif c1.button("▶ " + _("Unfreeze and train stage 2"), type="primary", key="train_go2", disabled=bool(busy),
                   help=busy):  # fmt: skip
        train_ui(config2, scan)
    if c2.button(_("The lesson's mistake: unfreeze at the default LR (1e-3 for every group)"), key="train_mistake",
                 disabled=bool(busy), help=busy):  # fmt: skip
        train_ui(mistake, scan)
    st.caption(_("Early layers learn general edges and textures: they need a much smaller LR than the new head."))
