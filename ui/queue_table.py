"""The Class page's view of the class server: who is here, the training worker, the queue table with Stop and
Cancel, and the queue's health (a damaged queue with Repair, the job records set aside as unreadable)."""

from __future__ import annotations

import os
import time

import pandas as pd
import streamlit as st

from core import quotas
from core.auth import Forbidden
from core.i18n import _, n_, num, p_
from core.settings import data_dir
from core.teach import classroom, job_records, jobs, requests, roster, worker
from core.teach.roster import markdown_safe
from ui.auth import identity
from ui.jobs import (
    JOBS,
    POLL_SECONDS,
    STATUS_ICON,
    current_jobs,
    forget_queue,
    job_queue,
    running_job_ui,
    start_worker_if_needed,
    stop_button,
)
from ui.notices import Level, notices_ui, notify

TABLE_ENDED = 100  # the Class page's table lists the active jobs and this many of the most recently ended
JobStatus = job_records.JobStatus


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
    forget_queue()
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
