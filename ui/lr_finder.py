"""The Training page's LR finder: run here when it is cheap (or on a laptop), else a job for the worker.

Laptop mode (no teacher password) runs it in the page, as training runs there. In class mode the
LR finder on body features already cached trains only a head: a few seconds, so it runs here for
everyone. Anything heavier (extracting the features first, or a finder over the whole network) is
a worker job, queued once per curve: the teacher queues it, a student is told the teacher prepares
it. Its result lands in the job record, so every tab with the same settings (and this tab after a
reload) finds the curve there.
"""

from __future__ import annotations

import os

import streamlit as st

from core import quotas
from core.auth import Forbidden
from core.data.datasets import DatasetScan
from core.i18n import _
from core.nets import models
from core.nets.schedules import lr_shown, lr_text
from core.settings import data_dir
from core.store import records, training_lock
from core.store.records import EventKind, LRFinderResult, RunConfig
from core.teach import job_records, jobs
from core.teach.job_records import JobKind, JobStatus
from core.train import curves, lr_finder
from core.train import features as feats
from core.train.features import shown_progress
from ui.auth import class_mode, identity
from ui.heavy import heavy_work_ui
from ui.jobs import job_progress_ui, job_queue, jobs_for, last_failure, submit_shared_ui
from ui.runs import features_dir
from ui.state import runs_dir

HISTORY = "train_lrfind_history"  # the curves shown, oldest first (the newest four)
SHOWN_JOBS = "train_lrfind_jobs"  # ids of the finished jobs whose curves are in the history


def _remember(result: LRFinderResult) -> None:
    history = st.session_state.setdefault(HISTORY, [])
    history.append(result)
    del history[:-4]


def _run_here(config: RunConfig, scan: DatasetScan) -> None:
    """The LR finder in this script run, with a progress bar for a feature extraction.

    In class mode (cached features only: about 2 CPU-seconds, bench/lr_finder_cost.py) it takes one of
    the server's heavy-work slots, so thirty students clicking at once wait in line, not on each other.
    """
    bar = st.progress(0.0, text=_("LR finder: extracting features / preparing…"))
    try:
        lr_finder.require_allowed(identity(), config, features_dir())
        # laptop: one user, every core (the tab's interactive cap is a ceiling pick_device keeps)
        with heavy_work_ui(_("The LR finder")) if class_mode() else models.thread_ceiling(os.cpu_count() or 1):
            result = lr_finder.find_lr(
                config,
                scan,
                runs_dir(),
                features_dir(),
                on_event=lambda e: (
                    e.kind == EventKind.EXTRACT and bar.progress(e.fraction or 0.0, text=shown_progress(e.what))
                ),
            )
        _remember(result)
    except (Forbidden, records.ConfigError, training_lock.TrainingBusy, models.WeightsUnavailable) as err:
        st.error(str(err))
    except OSError as err:  # its temp folder hit a full disk (it is gone again)
        if not quotas.is_disk_full(err):
            raise
        st.error(str(quotas.disk_full_error(runs_dir(), _(quotas.NOTHING_SAVED))))
    bar.empty()


def _queue(config: RunConfig, scan: DatasetScan) -> None:
    submit_shared_ui(lambda: jobs.submit_lr_find(data_dir(), identity(), config, scan.spec, queue=job_queue()))


def lr_finder_ui(config: RunConfig, scan: DatasetScan, busy: bool, busy_help: str | None) -> None:
    """The Run button, the job's progress while it waits or runs, and the curves with their suggestions."""
    in_class = class_mode()
    cheap = lr_finder.cheap(config, features_dir())
    key = lr_finder.lr_finder_key(config)
    found = jobs_for(JobKind.LR_FIND, key) if in_class else []
    done = job_records.find_job(found, JobKind.LR_FIND, key, (JobStatus.DONE,))
    st.session_state.setdefault(HISTORY, [])
    shown = st.session_state.setdefault(SHOWN_JOBS, [])
    if done is not None and done.result is not None and done.job_id not in shown:
        shown.append(done.job_id)
        _remember(done.result)
    if in_class and not cheap:
        st.caption(
            _(
                "These settings have no cached body features yet: the LR finder runs as a job for the worker "
                "(the teacher queues it), and its curve appears here for everyone when it is done."
            )
        )
    if st.button(_("Run the LR finder"), key="train_lrfind_btn", disabled=busy, help=busy_help):
        if not in_class or (cheap and not training_lock.training_running(runs_dir())):
            _run_here(config, scan)  # a laptop, or a head on cached features: seconds
        else:  # the features must be extracted first, or a training holds the lock: the worker runs it after
            _queue(config, scan)
        found = jobs_for(JobKind.LR_FIND, key) if in_class else []
    if in_class:
        if (active := job_records.find_job(found, JobKind.LR_FIND, key)) is not None:
            job_progress_ui(active.job_id)
        elif (failed := last_failure(found, JobKind.LR_FIND, key)) is not None:
            st.warning(
                _("The last LR finder for these settings did not finish: {why}").format(why=failed.shown_error())
            )
        if config.stages[0].fast and not cheap:
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
        submit_shared_ui(lambda: jobs.submit_extract(data_dir(), identity(), config, scan.spec, queue=job_queue()))
    found = jobs_for(JobKind.EXTRACT, key)
    if (active := job_records.find_job(found, JobKind.EXTRACT, key)) is not None:
        job_progress_ui(active.job_id)
    elif (failed := last_failure(found, JobKind.EXTRACT, key)) is not None:
        st.warning(
            _("The last feature extraction for these settings did not finish: {why}").format(why=failed.shown_error())
        )
