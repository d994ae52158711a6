"""The Training page's LR finder: a job, run here when it is cheap (or on a laptop), else by the worker.

Laptop mode (no teacher password) runs it in the page, as training runs there. In class mode the
LR finder on body features already cached trains only a head: a few seconds, so it runs here for
everyone (in a heavy-work slot). Anything heavier (extracting the features first, or a finder over the
whole network) waits for the worker, queued once per curve: the teacher queues it, a student is told
the teacher prepares it. Either way its result lands in the job record (ui.executor), so every tab with
the same settings (and this tab after a reload) finds the curve there.
"""

from __future__ import annotations

import streamlit as st

from core.data.datasets import DatasetScan
from core.i18n import _
from core.nets.schedules import lr_shown, lr_text
from core.settings import data_dir
from core.store import training_lock
from core.store.records import EventKind, RunConfig
from core.teach import job_records, jobs
from core.teach.job_records import JobKind, JobRecord, JobStatus
from core.train import curves, lr_finder
from core.train import features as feats
from ui.auth import identity
from ui.executor import run_job_ui, runs_here
from ui.jobs import job_progress_ui, jobs_for, last_failure, submit_shared_ui
from ui.progress import LiveBar
from ui.runs import features_dir
from ui.state import runs_dir
from ui.training import LR_HISTORY

HISTORY = LR_HISTORY  # the curves shown, oldest first (the newest four)
SHOWN_JOBS = "train_lrfind_jobs"  # ids of the finished jobs whose curves are in the history


def _remember(record: JobRecord) -> None:
    """Add a finished job's curve to the history (once)."""
    shown = st.session_state.setdefault(SHOWN_JOBS, [])
    if record.result is None or record.job_id in shown:
        return
    shown.append(record.job_id)
    history = st.session_state.setdefault(HISTORY, [])
    history.append(record.result)
    del history[:-4]


def _run(config: RunConfig, scan: DatasetScan, cheap: bool) -> None:
    """Submit the LR finder: run here (a progress bar while features are extracted), or queued for the worker."""
    live = LiveBar(_("LR finder: extracting features / preparing…"), (EventKind.EXTRACT,))
    record = run_job_ui(
        lambda work: submit_shared_ui(
            lambda queue: jobs.submit_lr_find(data_dir(), identity(), config, scan.spec, queue=queue), work
        ),
        seconds_of_work=cheap and not training_lock.training_running(runs_dir()),
        scan=scan,
        live=live,
    )
    live.clear()
    if record is not None and not record.active:  # run here: its curve, or why there is none
        if record.status == JobStatus.DONE:
            _remember(record)
        else:
            st.error(record.shown_error())


def lr_finder_ui(config: RunConfig, scan: DatasetScan, busy: bool, busy_help: str | None) -> None:
    """The Run button, the job's progress while it waits or runs, and the curves with their suggestions."""
    cheap = lr_finder.cheap(config, features_dir())
    key = lr_finder.lr_finder_key(config)
    found = jobs_for(JobKind.LR_FIND, key)
    done = job_records.find_job(found, JobKind.LR_FIND, key, (JobStatus.DONE,))
    st.session_state.setdefault(HISTORY, [])
    if done is not None:
        _remember(done)
    if not runs_here(cheap):
        st.caption(
            _(
                "These settings have no cached body features yet: the LR finder runs as a job for the worker "
                "(the teacher queues it), and its curve appears here for everyone when it is done."
            )
        )
    if st.button(_("Run the LR finder"), key="train_lrfind_btn", disabled=busy, help=busy_help):
        _run(config, scan, cheap)
        found = jobs_for(JobKind.LR_FIND, key)
    if (active := job_records.find_job(found, JobKind.LR_FIND, key)) is not None:
        job_progress_ui(active.job_id)  # waiting for the worker, or running in another tab
    elif (failed := last_failure(found, JobKind.LR_FIND, key)) is not None:
        st.warning(_("The last LR finder for these settings did not finish: {why}").format(why=failed.shown_error()))
    if config.stages[0].fast and not cheap and not runs_here():
        features_job_ui(config, scan)

    history = st.session_state.get(HISTORY, [])
    if history:
        st.plotly_chart(curves.lr_finder_figure(history), key="train_lrfind_chart")
        last = history[-1]
        for name, lr in last.suggestions.items():
            st.markdown(f"- **{name}** `{lr_text(lr)}`: {_(lr_finder.SUGGESTION_TEXT[name])}")
        if (valley := last.suggestions.get(lr_finder.VALLEY)) is not None:
            valley = lr_shown(valley)  # the number on the button is the one applied
            st.button(  # a callback: it sets lr_max before the number input is drawn on the next run
                _("Use valley ({lr}) as lr_max").format(lr=lr_text(valley)),
                key="train_use_valley",
                on_click=lambda: st.session_state.update(train_lr1=valley),
            )
        if len(history) > 1:
            st.caption(_("Earlier LR-finder curves are drawn faded, so you can see the curve change between runs."))


def features_job_ui(config: RunConfig, scan: DatasetScan) -> None:
    """Class mode, Fast on, nothing cached: extract the body features as a job (the teacher prepares them)."""
    key = feats.feature_spec(config, config.stages[0]).key
    if st.button(_("Extract the body features for these settings"), key="train_extract_btn"):
        submit_shared_ui(lambda queue: jobs.submit_extract(data_dir(), identity(), config, scan.spec, queue=queue))
    found = jobs_for(JobKind.EXTRACT, key)
    if (active := job_records.find_job(found, JobKind.EXTRACT, key)) is not None:
        job_progress_ui(active.job_id)
    elif (failed := last_failure(found, JobKind.EXTRACT, key)) is not None:
        st.warning(
            _("The last feature extraction for these settings did not finish: {why}").format(why=failed.shown_error())
        )
