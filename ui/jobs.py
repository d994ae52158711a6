"""Jobs in the UI: the queue, submitting a job, Stop, the live job box in every page's sidebar, a job's progress
where it was asked for. (The Class page's queue table: ui.queue_table.)"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from core.auth import Forbidden
from core.data.datasets import DatasetSpec
from core.i18n import _, n_, num
from core.settings import data_dir
from core.store import live, records
from core.store.records import LRFinderResult, RunConfig
from core.teach import job_records, jobs, worker
from ui.auth import heartbeat, identity, rerun_if_role_changed, teacher_only
from ui.live import rerun_if_changed, teacher_link_ui
from ui.notices import Level, notices_ui, notify
from ui.progress import job_bar

POLL_SECONDS = 3.0
JOBS = "jobs"  # the notice place of Stop, Cancel and the queue's repair (ui.notices): the sidebar box, the Class page
RECENT_SECONDS = 600.0  # a job that ended this recently is still mentioned in the status box
LOCAL_WORKER_ENV = "PETLAB_LOCAL_WORKER"  # "0": never start a worker here (workers run on other machines)
JobStatus = job_records.JobStatus
JobKind = job_records.JobKind
STATUS_ICON = {JobStatus.QUEUED: "⏳", JobStatus.RUNNING: "▶️", JobStatus.DONE: "✅", JobStatus.FAILED: "❌",
               JobStatus.STOPPED: "⏹", JobStatus.CANCELLED: "🚫"}  # fmt: skip


@st.cache_resource(show_spinner=False)
def _queue(base: str, url: str) -> jobs.Queue:
    return jobs.make_queue(Path(base), url or None)


def job_queue() -> jobs.Queue:
    """The queue of this data folder (SQLite, or Redis when $PETLAB_QUEUE names it), one per server."""
    return _queue(str(data_dir()), os.environ.get(jobs.QUEUE_ENV, ""))


def forget_queue() -> None:
    """Drop the cached connection to the queue (after a repair set its file aside)."""
    _queue.clear()


def start_worker_if_needed() -> None:
    """Start the local worker when none serves this data folder (unless PETLAB_LOCAL_WORKER=0)."""
    if os.environ.get(LOCAL_WORKER_ENV, "1") != "0":
        worker.ensure_worker(data_dir())


def submit_job(
    config: RunConfig,
    spec: DatasetSpec,
    retrain: bool = False,
    lr_finder: LRFinderResult | None = None,
    queue: jobs.Executor | None = None,
) -> job_records.JobRecord | None:
    """Submit a training (the teacher's action, or a laptop's) to `queue` (default: the worker's): the record,
    or None with the reason shown. Run here (ui.executor), the record returned has ended."""
    if not teacher_only("train"):
        return None
    try:
        queue = queue or job_queue()
        record = jobs.submit(data_dir(), identity(), config, spec, retrain, lr_finder, queue=queue)
    except (Forbidden, records.ConfigError, job_records.JobError) as err:
        st.error(str(err))
        return None
    if queue.queued:
        start_worker_if_needed()
    return record


def _stop(job_id: str) -> None:
    """Button callback: cancel a queued job or stop the running one (the guard is core.teach.jobs.stop_job)."""
    try:
        jobs.stop_job(data_dir(), identity(), job_id)
    except (Forbidden, job_records.JobError) as err:
        notify(JOBS, str(err), Level.ERROR)


def stop_button(record: job_records.JobRecord, where: str) -> None:
    """Stop (running) or Cancel (queued), drawn for the teacher only."""
    if record.active and identity().is_teacher:
        label = "⏹ " + _("Stop") if record.status == JobStatus.RUNNING else _("Cancel")
        st.button(label, key=f"jobs_stop_{where}_{record.job_id}", on_click=_stop, args=(record.job_id,))


def running_job_ui(record: job_records.JobRecord, where: str) -> None:
    """One running job: its title, a progress bar with the latest event, Stop for the teacher."""
    title = record.shown_title()
    st.markdown(_("**Training:** {title}").format(title=title) if record.kind == JobKind.TRAIN else f"**{title}**")
    job_bar(record, _("preparing data and model…"))
    if record.stop_requested:
        st.caption(_("Stop requested: it ends after the current batch."))
    stop_button(record, where)


JOBS_SEEN = "_jobs_seen"  # (class stamp, jobs) as this tab last read them


def current_jobs() -> list[job_records.JobRecord]:
    """The job records, read again only when the class stamp moved or a job is running (its progress).

    Idle, a poll of the sidebar box then costs a stat, not a read of every job record.
    """
    base = data_dir()
    stamp = live.version(base, live.Channel.CLASS)
    seen = st.session_state.get(JOBS_SEEN)
    if seen is not None and seen[0] == stamp and not any(j.status == JobStatus.RUNNING for j in seen[1]):
        return seen[1]
    found = job_records.list_jobs(base, ended=1)  # the active ones and the last ended: a few files, never all
    st.session_state[JOBS_SEEN] = (stamp, found)
    return found


@st.fragment(run_every=POLL_SECONDS)
def jobs_status_ui() -> None:
    """The sidebar box on every page (class mode): where the teacher is in the lesson, the running job, the
    queue, the last result.

    Every poll first asks whether anything the page shows changed elsewhere (ui.live): the class
    dataset or model, a job queued or ended, a run stored, the teacher's step on a Lesson page that
    follows it; if so the whole page reruns.
    """
    rerun_if_role_changed()  # signed out elsewhere, or the password changed: this tab follows now
    who = identity()
    heartbeat(who)
    rerun_if_changed()
    teacher_link_ui(who.is_teacher)
    base = data_dir()
    found = current_jobs()
    running = [j for j in found if j.status == JobStatus.RUNNING]
    queued = [j for j in found if j.status == JobStatus.QUEUED]
    if queued and not running and not worker.worker_running(base):
        start_worker_if_needed()
    for record in running:
        running_job_ui(record, "side")
    if queued:
        titles = _("; ").join(j.shown_title() for j in queued[:3]) + ("…" if len(queued) > 3 else "")
        st.caption("⏳ " + _("{n} queued: {titles}").format(n=num(len(queued)), titles=titles))
    ended = [j for j in found if not j.active and j.finished and time.time() - j.finished < RECENT_SECONDS]
    if ended and not running:
        last = ended[-1]
        note = (
            _("run `{run}`").format(run=last.run_id[:8])
            if last.status == JobStatus.DONE and last.run_id
            else last.shown_error()
        )
        st.caption(
            STATUS_ICON[last.status]
            + " "
            + _("{title}: {status}. {note}").format(title=last.shown_title(), status=last.status.label, note=note)
        )
    notices_ui(JOBS)


def jobs_for(kind: JobKind, key: str) -> list[job_records.JobRecord]:
    """The jobs of one kind and key (an LR finder's curve, an index being built), read through the store's index."""
    return job_records.list_jobs(data_dir(), kind=kind, key=key)


def queued_ui(record: job_records.JobRecord) -> None:
    """Say where a training just queued for the worker stands in the queue."""
    ahead = job_records.jobs_ahead(job_records.index(data_dir()), record.job_id)
    where = (
        n_("{n} job ahead of it", "{n} jobs ahead of it", ahead).format(n=num(ahead))
        if ahead
        else _("it starts at once")
    )
    st.success(
        _("Queued **{title}**: {where}. The sidebar shows its progress; it trains even if you close this tab.").format(
            title=record.shown_title(), where=where
        )
    )


# ---- shared-cache jobs (LR finder, body features, patch index) in the page that asked -----------------


def submit_shared_ui(
    submit: Callable[[jobs.Executor], tuple[job_records.JobRecord, bool]], queue: jobs.Executor | None = None
) -> job_records.JobRecord | None:
    """Submit a shared-cache job through core (which checks who may) to `queue` (default: the worker's, which is
    started); the record, or None with the reason shown. Run here (ui.executor), the record returned has ended."""
    try:
        queue = queue or job_queue()
        record, joined = submit(queue)
    except (Forbidden, records.ConfigError, job_records.JobError) as err:
        st.error(str(err))
        return None
    if queue.queued:
        start_worker_if_needed()
    if joined:
        st.info(_("Someone already asked for exactly this: you get the same result when it is done."))
    return record


@st.fragment(run_every=POLL_SECONDS)
def job_progress_ui(job_id: str) -> None:
    """One job's live progress or place in the queue, where it was asked for; the page reruns when it ends."""
    found = job_records.list_jobs(data_dir(), ended=0)  # the active jobs: its place in line
    record = next((j for j in found if j.job_id == job_id), None)
    if record is None:
        st.rerun()  # it ended (or is gone): the whole page shows the result, or why there is none
    if record.status == JobStatus.QUEUED:
        ahead = job_records.jobs_ahead(job_records.index(data_dir()), record.job_id)
        st.caption(
            n_(
                "⏳ Queued for the worker: {n} job ahead of it. It runs even if you close this tab.",
                "⏳ Queued for the worker: {n} jobs ahead of it. It runs even if you close this tab.",
                ahead,
            ).format(n=ahead)
        )
    else:
        job_bar(record)
    stop_button(record, "inline")


def last_failure(found: list[job_records.JobRecord], kind: JobKind, key: str) -> job_records.JobRecord | None:
    """The newest ended job of this kind and key when it failed or was stopped (and nothing newer succeeded)."""
    ended = job_records.find_job(found, kind, key, job_records.ENDED)
    return ended if ended is not None and ended.status != JobStatus.DONE else None
