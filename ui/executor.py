"""Where this tab's work runs, behind one interface (core.teach.jobs): the worker's queue, or this script thread.

Class mode queues a job for the worker (it runs beside the app, one at a time, even with the tab closed);
a laptop, with one user and no worker, runs it here at once (core.teach.jobs.InProcess), with its live progress
in the page, as class mode does with seconds of work (an LR finder on cached features). Either way it is
the same job record, so pages submit, show progress and read results one way; only this module asks
which mode the server is in to decide where work runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import streamlit as st

from core.data.datasets import DatasetScan
from core.i18n import N_, _
from core.nets.models import thread_ceiling
from core.settings import data_dir
from core.store.records import TrainEvent
from core.teach import jobs
from core.teach.job_records import JobKind, JobRecord
from ui.auth import class_mode
from ui.frame import background_training
from ui.heavy import heavy_work_ui
from ui.jobs import job_queue
from ui.state import scan_of

WORK_NAMES = {  # what a heavy-work slot's place in line names (ui.heavy)
    JobKind.LR_FIND: N_("The LR finder"),
    JobKind.PATCH_INDEX: N_("Building the patch index"),
    JobKind.EXTRACT: N_("Extracting the body features"),
    JobKind.TRAIN: N_("The training"),
}


def runs_here(seconds_of_work: bool = False) -> bool:
    """Whether a job submitted now runs in this script thread: on a laptop always; in class mode only seconds
    of work (the rest waits for the worker)."""
    return not class_mode() or seconds_of_work


def executor(
    seconds_of_work: bool = False,
    scan: DatasetScan | None = None,
    on_event: Callable[[TrainEvent], None] | None = None,
    threads: int | None = None,
) -> jobs.Executor:
    """This tab's executor for one job: the worker's queue, or InProcess (see runs_here).

    scan: the page's scan of the job's dataset (run here, the job does not scan it again). threads: a
    laptop's torch threads for work other than training (default: every core).
    """
    if not runs_here(seconds_of_work):
        return job_queue()
    return jobs.InProcess(
        data_dir(),
        scan_fn=(lambda spec: scan) if scan is not None else scan_of,
        on_event=on_event,
        around=lambda record: _work_threads(record, threads),
    )


@contextmanager
def _work_threads(record: JobRecord, threads: int | None) -> Iterator[None]:
    """The threads a job run here gets: in class mode (many users), and for a patch index, one of the server's
    heavy-work slots; a laptop's training cores − 1 at a lower priority, so the other tabs stay quick (as the
    worker's); other laptop work every core (or `threads`)."""
    if class_mode() or record.kind == JobKind.PATCH_INDEX:
        with heavy_work_ui(_(WORK_NAMES[record.kind])):
            yield
    elif record.kind in (JobKind.TRAIN, JobKind.EXTRACT):
        with background_training():
            yield
    else:
        with thread_ceiling(threads or os.cpu_count() or 1):
            yield


def run_job_ui(
    submit: Callable[[jobs.Executor], JobRecord | None],
    seconds_of_work: bool = False,
    scan: DatasetScan | None = None,
    live: Callable[[], Callable[[TrainEvent], None]] | None = None,
    threads: int | None = None,
) -> JobRecord | None:
    """Submit one job through this tab's executor: `submit(executor)` returns its record (None: refused, the
    reason shown). Run here, `live()` first draws the job's display and returns what sees each event; the
    record returned has ended. Queued, the record is still active: its progress shows elsewhere."""
    try:
        work = executor(seconds_of_work, scan, threads=threads)
    except jobs.QueueUnavailable as err:  # jobs/queue.db damaged: nothing is queued, the teacher can repair it
        st.error(str(err))
        return None
    if not work.queued and live is not None:
        work.on_event = live()
    return submit(work)
