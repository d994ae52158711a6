"""Jobs in the UI: submit a training, the live job status on every page, the queue table, a job's progress."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import streamlit as st

from core import quotas
from core.auth import Forbidden
from core.data.datasets import DatasetSpec
from core.i18n import _, n_, num, p_
from core.settings import data_dir
from core.store import live, records
from core.store.records import LRFinderResult, RunConfig
from core.teach import classroom, job_records, jobs, roster, worker
from core.teach.roster import markdown_safe
from ui.auth import heartbeat, identity, rerun_if_role_changed, teacher_only
from ui.live import rerun_if_changed, teacher_link_ui
from ui.notices import Level, notices_ui, notify

POLL_SECONDS = 3.0
JOBS = "jobs"  # the notice place of Stop, Cancel and the queue's repair (ui.notices): the sidebar box, the Class page
RECENT_SECONDS = 600.0  # a job that ended this recently is still mentioned in the status box
TABLE_ENDED = 100  # the Class page's table lists the active jobs and this many of the most recently ended
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
    last = record.last
    fraction = last.fraction if last else None
    text = job_records.event_text(last, record.config) if last else _("preparing data and model…")
    st.progress(fraction if fraction is not None else 0.0, text=text)
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


def _clear_unreadable() -> None:
    try:
        jobs.clear_unreadable(data_dir(), identity())
    except Forbidden as err:
        notify(JOBS, str(err), Level.ERROR)


def unreadable_jobs_ui() -> None:
    """The records set aside because they could not be read (wrong types, broken JSON): what and why, and Delete."""
    aside = job_records.quarantined(data_dir())
    if not aside:
        return
    st.warning(
        n_(
            "{n} job record could not be read and was set aside (it does not run and breaks no page):",
            "{n} job records could not be read and were set aside (they do not run and break no page):",
            len(aside),
        ).format(n=num(len(aside)))
        + "\n"
        + "\n".join(f"- `{q.job_id}`: {q.reason}" for q in aside[:10])
    )
    st.button(_("Delete the unreadable records"), key="jobs_clear_unreadable", on_click=_clear_unreadable)


def _repair_queue() -> None:
    try:
        woken = jobs.repair_queue(data_dir(), identity())
    except (Forbidden, job_records.JobError, OSError) as err:
        notify(JOBS, str(err), Level.ERROR)
        return
    _queue.clear()
    start_worker_if_needed()
    said = n_(
        "The queue was repaired: {n} waiting job goes on.", "The queue was repaired: {n} waiting jobs go on.", woken
    )
    notify(JOBS, said.format(n=woken), Level.SUCCESS)


def queue_health_ui() -> None:
    """The Class page: say when the queue cannot take jobs (jobs/queue.db damaged, Redis down), with Repair."""
    try:
        problem = jobs.queue_problem(data_dir(), job_queue())
    except jobs.QueueUnavailable:
        problem = jobs.queue_problem(data_dir())
    if not problem:
        return
    st.error(
        _(
            "The job queue cannot take new jobs ({problem}): students are told so. Jobs already waiting are kept, "
            "and you can still cancel them."
        ).format(problem=problem)
    )
    if job_queue_kind() == "sqlite":
        st.button(
            _("Repair the queue (set {file} aside and start a new one)").format(file=jobs.QUEUE_FILE),
            key="jobs_repair_queue",
            on_click=_repair_queue,
        )


def job_queue_kind() -> str:
    return "redis" if os.environ.get(jobs.QUEUE_ENV, "") else "sqlite"


@st.fragment(run_every=POLL_SECONDS)
def running_jobs_ui(where: str) -> None:
    """The running jobs' progress bars, refreshed as often as the sidebar's (the rest of the page on a change)."""
    for record in [j for j in job_records.list_jobs(data_dir(), ended=0) if j.status == JobStatus.RUNNING]:
        running_job_ui(record, where)


def who_queued(record: job_records.JobRecord, asked_by: dict[str, str]) -> str:
    """Who a job is for, as the teacher reads it: the teacher, or the student by name or number (plain text)."""
    if record.job_id in asked_by:  # a student's request the teacher approved
        return _("teacher, for {student}").format(student=roster.label_of(data_dir(), asked_by[record.job_id]))
    role, _sep, tab = record.queued_by.partition(":")
    if role != "student":
        return _("teacher")
    return roster.label_of(data_dir(), tab)


WORKER_FRESH_SECONDS = 15.0  # a worker heartbeat (core.teach.worker, every 2 s) this recent: a worker serves the queue


def worker_state(found: list[job_records.JobRecord]) -> str:
    """The training worker in a teacher's words: training, ready, or not running (it starts with the next job)."""
    base = data_dir()
    if any(j.status == JobStatus.RUNNING for j in found):
        return p_("worker", "training")
    info = worker.worker_info(base)
    fresh = info is not None and time.time() - info.updated < WORKER_FRESH_SECONDS
    return p_("worker", "ready") if worker.worker_running(base) or fresh else _("not running")


@st.fragment(run_every=POLL_SECONDS)
def who_is_here_ui() -> None:
    """The Class page's first row: students and teacher tabs connected, whether the worker can train, free disk."""
    here = classroom.active_sessions(data_dir())
    disk = quotas.disk_state(data_dir())
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(
        _("students connected"),
        here.get("student", 0),
        help=_(
            "machines with a tab open in the last {seconds} s (tabs on the server itself count one by one); a tab "
            "closed within seconds of opening is not counted"
        ).format(seconds=num(classroom.ACTIVE_SECONDS, 0)),
    )
    c2.metric(_("teacher tabs"), here.get("teacher", 0))
    c3.metric(
        _("training worker"),
        worker_state(current_jobs()),
        help=_("It trains the queue one job at a time, beside the app; it starts by itself when a job is queued."),
    )
    c4.metric(
        _("free disk space"),
        _("{gb} GB").format(gb=num(disk.free / 1024**3, 1)),
        help=_("Pet Lab keeps {floor} MB free ($PETLAB_MIN_FREE_MB): below that, new photos, trainings and caches are "
               "refused.").format(floor=num(disk.floor / quotas.MB, 0)),
    )  # fmt: skip


def queue_rows(found: list[job_records.JobRecord], asked_by: dict[str, str]) -> list[dict[str, str]]:
    """The queue table's rows, newest first, every cell text in the current language (an empty cell, never None).

    st.table renders Markdown in its cells: names and titles are escaped (a student's name is never a link).
    """
    return [
        {
            "": STATUS_ICON[j.status],
            _("job"): markdown_safe(j.shown_title()),
            _("for"): markdown_safe(who_queued(j, asked_by)),
            _("status"): j.status.label,
            _("queued at"): time.strftime("%H:%M:%S", time.localtime(j.created)),
            _("took (s)"): num(j.finished - j.started, 1) if j.finished and j.started else "",
            _("run"): j.run_id[:8],
            _("why"): markdown_safe(j.shown_error()),
        }
        for j in reversed(found)
    ]


def queue_table_ui() -> list[job_records.JobRecord]:
    """The queue, newest first (every active job and the most recently ended), with who asked and Stop/Cancel
    on active jobs (the Class page); returns the jobs shown."""
    from core.teach import requests  # the approved requests name the student a job is for

    base = data_dir()
    found = job_records.list_jobs(base, ended=TABLE_ENDED)
    queue_health_ui()
    unreadable_jobs_ui()
    notices_ui(JOBS)
    if not found:
        st.caption(_("No jobs yet."))
        return found
    running_jobs_ui("page")
    asked_by = {r.job_id: r.tab for r in requests.all_requests(data_dir()) if r.job_id}
    # st.table, not st.dataframe: a long title or failure reason wraps in its cell, whole, instead of being cut off
    st.table(pd.DataFrame(queue_rows(found, asked_by)), hide_index=True)
    stored = len(job_records.index(base))
    if stored > len(found):
        st.caption(
            _("The newest {shown} of {stored} jobs; ended jobs are kept {days} days (at most {kept}).").format(
                shown=num(len(found)),
                stored=num(stored),
                days=num(job_records.KEEP_DAYS, 0),
                kept=num(job_records.KEEP_ENDED),
            )
        )
    for record in [j for j in found if j.status == JobStatus.QUEUED]:
        c1, c2 = st.columns([4, 1])
        c1.caption(f"⏳ {record.shown_title()} · {markdown_safe(who_queued(record, asked_by))}")
        with c2:
            stop_button(record, "page")
    return found


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
        last = record.last
        fraction = last.fraction if last else None
        st.progress(
            fraction if fraction is not None else 0.0,
            text=job_records.event_text(last, record.config) if last else _("starting…"),
        )
    stop_button(record, "inline")


def last_failure(found: list[job_records.JobRecord], kind: JobKind, key: str) -> job_records.JobRecord | None:
    """The newest ended job of this kind and key when it failed or was stopped (and nothing newer succeeded)."""
    ended = job_records.find_job(found, kind, key, job_records.ENDED)
    return ended if ended is not None and ended.status != JobStatus.DONE else None
