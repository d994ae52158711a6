"""Work as jobs: queued by the teacher and run one at a time by a worker process, or run at once in this process.

The queue is huey's: by default SqliteHuey in `<data>/jobs/queue.db` (no service to install); with
$PETLAB_QUEUE=redis://host:port/db, RedisHuey, so workers can run on other machines that mount the
same data folder (see docs/class-mode.md). The broker carries only job ids, as JSON (JobMessages:
huey pickles its messages by default, and a pickle read from a broker anyone can write to runs their
code); what a job is and how it goes is its JobRecord (core.teach.job_records).

The worker (core.teach.worker) runs each job through core.train.training.train_run, which stores a run only
when it is complete. Laptop mode has no worker: its executor is InProcess, behind the same submit and
status interface (the same records, progress, results and Stop), running a job in the thread that
submits it; class mode uses it too for seconds of work (an LR finder on cached features).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from huey.registry import Message
from huey.serializer import Serializer
from huey.storage import SqliteStorage

from core import quotas
from core.auth import Forbidden, Identity, require
from core.data import datasets
from core.data.datasets import DatasetSpec
from core.i18n import N_, _
from core.inside import patches
from core.inside.patches import PatchIndexRequest
from core.nets import models
from core.settings import features_dir, runs_dir
from core.store import records, training_lock
from core.store.records import EpochRow, EventKind, LRFinderResult, RunConfig, TrainEvent
from core.teach import job_records
from core.teach.job_records import (
    JobError,
    JobKind,
    JobRecord,
    JobStatus,
    clear_quarantine,
    delete_job,
    find_job,
    index,
    jobs_dir,
    list_jobs,
    load_job,
    locked,
    next_in_line,
    prune_jobs,
    save_job,
    update_job,
    valid_job_id,
)
from core.train import learners, lesson, lr_finder, training
from core.train.features import feature_spec

QUEUE_ENV = "PETLAB_QUEUE"  # unset: SQLite in the data folder; redis://host:port/db: a Redis broker
QUEUE_FILE = "queue.db"
TASK_NAME = "petlab.run_job"
STUDENT_PATCH_IMAGES = 1000  # a student's patch index covers at most this many images (about a minute on a CPU)
# reasons the worker stores in a job record (in English: it has no language); translated where shown
STOPPED_BY_TEACHER = N_("Stopped by the teacher: nothing was saved.")
STOPPED = N_("Stopped.")
INTERRUPTED = N_("Interrupted: nothing was saved.")  # the thread running it was stopped (a page rerun, the process)
# jobs a student (a computer: core.auth.client_key) may have waiting or running at once; joining one does not count
STUDENT_ACTIVE_JOBS = int(os.environ.get("PETLAB_STUDENT_JOBS", "1"))
STUDENT_QUEUE = int(os.environ.get("PETLAB_STUDENT_QUEUE", "30"))  # students' jobs waiting or running, all together


# ---- the queue ----------------------------------------------------------------------------------

MESSAGE_VERSION = 1
MAX_MESSAGE_BYTES = 256  # {"job": …, "task": …, "v": 1} is about 100 bytes
_TASK_ID = re.compile(r"^[0-9a-f-]{1,64}$")


class JobMessages(Serializer):
    """huey's serializer for our one task: a message is JSON holding a job id; nothing is ever unpickled.

    Writes `{"job": <job id>, "task": <huey's task id>, "v": 1}` and reads back exactly that and nothing
    else: a pickle, another task's message, a result, a revocation or any extra field raises ValueError
    before anything is decoded beyond JSON (huey's consumer logs it and goes on). The worker then trusts
    only the job record the id names (core.teach.job_records), never the message.
    """

    def __init__(self) -> None:
        super().__init__()
        self.task_name = ""  # huey's registry name of petlab.run_job, set by make_queue

    def serialize(self, data: Any) -> bytes:
        if not (
            isinstance(data, Message)
            and data.name == self.task_name
            and isinstance(data.args, tuple)
            and len(data.args) == 1
            and valid_job_id(data.args[0])
            and not data.kwargs
            and all(getattr(data, f) is None for f in ("eta", "on_complete", "on_error", "expires", "chord_config"))
            and _TASK_ID.match(str(data.id))
        ):
            raise TypeError("The Pet Lab queue carries only a job id for petlab.run_job.")
        text = json.dumps({"job": data.args[0], "task": str(data.id), "v": MESSAGE_VERSION}, sort_keys=True)
        return text.encode()

    def deserialize(self, data: Any) -> Any:
        if not isinstance(data, bytes | bytearray | memoryview) or len(data) > MAX_MESSAGE_BYTES:
            raise ValueError("Not a Pet Lab job message (wrong type or too long).")
        try:
            message = json.loads(bytes(data).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"Not a Pet Lab job message: {err}") from err
        if (
            not isinstance(message, dict)
            or set(message) != {"job", "task", "v"}
            or message["v"] != MESSAGE_VERSION
            or not valid_job_id(message["job"])
            or not isinstance(message["task"], str)
            or not _TASK_ID.match(message["task"])
        ):
            raise ValueError("Not a Pet Lab job message (unexpected fields).")
        return Message(message["task"], self.task_name, None, 0, 0, None, (message["job"],), {}, None, None)


class QueueUnavailable(JobError):
    """The broker cannot take a message (jobs/queue.db damaged, Redis not answering): nothing was queued."""


class QueueFile(SqliteStorage):
    """huey's SQLite storage for jobs/queue.db that reopens the file when it is replaced (repair_queue), and
    whose consumer side logs a damaged file once a minute instead of a traceback every second."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._inode: int | None = None
        self._last_complaint = 0.0
        super().__init__(*args, **kwargs)

    @property
    def conn(self):  # called under huey's storage lock
        inode = _inode(self.filename)
        if self._conn is not None and inode != self._inode:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        if self._conn is None:
            conn = self._create_connection()
            for sql in self.ddl:  # a fresh file gets its tables
                conn.execute(sql)
            self._conn, self._inode = conn, _inode(self.filename)
        return self._conn

    def _complain(self, err: Exception) -> None:
        if time.time() - self._last_complaint > 60:
            self._last_complaint = time.time()
            logging.getLogger("petlab.queue").error(
                "%s cannot be read (%s): repair it on the Class page", QUEUE_FILE, err
            )

    def dequeue(self):
        try:
            return super().dequeue()
        except sqlite3.DatabaseError as err:
            self._complain(err)
            return None

    def read_schedule(self, ts):
        try:
            return super().read_schedule(ts)
        except sqlite3.DatabaseError as err:
            self._complain(err)
            return []


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


@dataclass
class Queue:
    """A huey instance and its one task, `petlab.run_job(job_id)`: a wake-up for the worker, which runs the
    next job in fair order (next_job), so a message names a job but never decides what runs."""

    huey: Any
    run_job: Any  # huey's TaskWrapper: calling it enqueues (under the records lock, see _add)
    queued = True  # a job submitted here waits for the worker: submit returns it queued

    @property
    def kind(self) -> str:
        return "redis" if type(self.huey).__name__ == "RedisHuey" else "sqlite"

    def started(self, base: Path, record: JobRecord) -> JobRecord:
        """After the records lock: nothing more to do here, the worker takes it from the queue."""
        return record


@dataclass
class InProcess:
    """The executor without a broker or a worker: a job runs to its end in the thread that submits it.

    Behind the queue's interface (submit, submit_lr_find, ... take it as `queue`), so a job run here has
    the same record, progress, result and Stop as one the worker runs; submit returns it ended. Laptop
    mode runs every job this way (one user: the page shows it live); class mode runs seconds of work
    this way (an LR finder on cached features). Its jobs never reach a worker: run_job claims the job
    under the records lock, before any worker could, and students' queue limits do not count them.

    on_event: sees every training event as it happens (a page's live chart), before the record does.
    around(record): the context the job runs in (its threads, its priority, a heavy-work slot).
    wait: wait for the data folder's training lock instead of failing with TrainingBusy.
    """

    base: Path
    scan_fn: Callable | None = None
    on_event: Callable[[TrainEvent], None] | None = None
    around: Callable[[JobRecord], AbstractContextManager] | None = None
    wait: bool = False
    kind = "in_process"
    queued = False

    def run_job(self, job_id: str) -> None:
        """Under the records lock, just saved (see _add): claim it for this thread, so no worker takes it."""
        _claim(Path(self.base), load_job(Path(self.base), job_id))

    def started(self, base: Path, record: JobRecord) -> JobRecord:
        """Run the claimed job to its end (outside the records lock); returns its ended record."""
        claimed = load_job(Path(base), record.job_id)
        with self.around(claimed) if self.around else nullcontext():
            return _execute_claimed(Path(base), claimed, self.scan_fn, self.on_event, self.wait)


Executor = Queue | InProcess


def make_queue(base: Path, url: str | None = None) -> Queue:
    """The queue for this data folder: Redis when url (or $PETLAB_QUEUE) names one, else SQLite in jobs/.

    Raises QueueUnavailable when jobs/queue.db cannot be opened (damaged): see repair_queue.
    """
    from huey import Huey, RedisHuey

    url = url if url is not None else os.environ.get(QUEUE_ENV, "")
    messages = JobMessages()
    if url.startswith(("redis://", "rediss://", "unix://")):
        import redis

        pool = redis.ConnectionPool.from_url(url, socket_timeout=10, socket_connect_timeout=5)  # never hang a page
        huey = RedisHuey("petlab", connection_pool=pool, results=False, serializer=messages)
    elif url:
        raise JobError(f"{QUEUE_ENV} must be empty (SQLite) or a redis:// URL, not {url!r}.")
    else:
        try:
            huey = Huey("petlab", storage_class=QueueFile, filename=str(jobs_dir(base) / QUEUE_FILE),
                        results=False, strict_fifo=True, serializer=messages)  # fmt: skip
        except sqlite3.DatabaseError as err:
            raise QueueUnavailable(_queue_broken(err)) from err
    base = Path(base)

    def run_job(job_id: str) -> None:
        execute_next(base)

    task = huey.task(name=TASK_NAME)(run_job)
    messages.task_name = huey._registry.task_to_string(task.task_class)
    return Queue(huey, task)


def _queue_broken(err: Exception) -> str:
    return _(
        "The job queue is out of order ({error}), so nothing was queued. The teacher sees this on the Class page "
        "and can repair it."
    ).format(error=type(err).__name__)


def queue_problem(base: Path, queue: Queue | None = None) -> str:
    """Why the queue cannot take jobs now, in the broker's own words ("" when it can): for the Class page."""
    try:
        (queue or make_queue(base)).huey.pending_count()
    except QueueUnavailable as err:
        cause = err.__cause__ or err
        return f"{type(cause).__name__}: {cause}"
    except Exception as err:  # sqlite3.DatabaseError, redis errors, OSError
        return f"{type(err).__name__}: {err}"
    return ""


def repair_queue(base: Path, identity: Identity) -> int:
    """Teacher: set a damaged jobs/queue.db aside (as queue.db.damaged-<time>), start a fresh one and wake the
    worker once per queued job (the records are the truth; the old file held only wake-ups). Returns how many."""
    require(identity, "stop")
    folder = jobs_dir(base)
    with locked(base):
        stamp = time.strftime("%Y%m%d%H%M%S")
        for suffix in ("", "-wal", "-shm", "-journal"):
            path = folder / f"{QUEUE_FILE}{suffix}"
            if path.exists():
                path.rename(folder / f"{QUEUE_FILE}{suffix}.damaged-{stamp}")
        queue = make_queue(base, "")
        waiting = [j for j in list_jobs(base, reconcile_dead=False, ended=0) if j.status == JobStatus.QUEUED]
        for record in waiting:
            queue.run_job(record.job_id)
    return len(waiting)


# ---- queueing: atomic, with per-student limits --------------------------------------------------------


def _new_id() -> str:
    return f"{time.strftime('%Y%m%d%H%M%S')}{uuid.uuid4().hex[:6]}"


def _record(identity: Identity, kind: JobKind, key: str, title: str, config, dataset: DatasetSpec, **more) -> JobRecord:
    return JobRecord(
        job_id=_new_id(),
        title=title,
        config=config,
        dataset=dataset,
        queued_by=f"{identity.role}:{identity.tab}",
        client=identity.client,
        created=time.time(),
        kind=kind,
        key=key,
        **more,
    )


def _check_student_limits(base: Path, identity: Identity) -> None:
    """A student (a computer, however many tabs) may have STUDENT_ACTIVE_JOBS waiting or running, and all
    students together STUDENT_QUEUE; JobError says which limit was reached."""
    active = [row for row in index(base).values() if row.active and not row.by_teacher]
    if sum(1 for row in active if row.client == identity.client) >= STUDENT_ACTIVE_JOBS:
        raise JobError(_("Your earlier request is still waiting or running: one at a time, please."))
    if len(active) >= STUDENT_QUEUE:
        raise JobError(
            _("The queue is full ({n} students' requests waiting): try again when some are done.").format(n=len(active))
        )


def _add(
    base: Path, identity: Identity, record: JobRecord, queue: Executor | None, join: bool
) -> tuple[JobRecord, bool]:
    """Store a job and its queue message, both or neither (one lock around the two), after the checks; then
    the executor starts it (InProcess: runs it to its end here, so the record returned has ended).

    join: a shared-cache job (kind, key) already waiting or running is returned instead (joined=True).
    A broker that refuses the message (jobs/queue.db damaged, Redis down) leaves no record behind:
    QueueUnavailable says so, and a later request is not refused as "still waiting".
    """
    base = Path(base)
    with locked(base):
        if join:
            found = list_jobs(base, reconcile_dead=False, ended=0, kind=record.kind, key=record.key)
            if (active := find_job(found, record.kind, record.key)) is not None:
                return active, True
        if not identity.is_teacher and (queue is None or queue.queued):  # work run here waits for a slot instead
            _check_student_limits(base, identity)
        queue = queue or make_queue(base)
        save_job(base, record)
        try:
            queue.run_job(record.job_id)
        except Exception as err:  # sqlite3.DatabaseError, redis errors, OSError: whatever the broker raises
            delete_job(base, record.job_id)
            raise QueueUnavailable(_queue_broken(err)) from err
    if sum(1 for row in index(base).values() if not row.active) > job_records.KEEP_ENDED * 1.1:
        prune_jobs(base)
    return queue.started(base, record), False


def submit(
    base: Path,
    identity: Identity,
    config: RunConfig,
    dataset: DatasetSpec,
    retrain: bool = False,
    lr_finder: LRFinderResult | None = None,
    queue: Executor | None = None,
) -> JobRecord:
    """Teacher: queue a training of config on dataset; returns its record (status `queued`)."""
    require(identity, "train")
    records.validate(config)
    record = _record(identity, JobKind.TRAIN, "", config.title(), config, dataset, retrain=retrain, lr_finder=lr_finder)
    return _add(base, identity, record, queue, join=False)[0]


def _enqueue(base: Path, identity: Identity, record: JobRecord, queue: Executor | None) -> tuple[JobRecord, bool]:
    """Queue a shared-cache job once per (kind, key): a second request joins the active one. Returns (job, joined)."""
    return _add(base, identity, record, queue, join=True)


def submit_lr_find(
    base: Path, identity: Identity, config: RunConfig, dataset: DatasetSpec, queue: Executor | None = None
) -> tuple[JobRecord, bool]:
    """Queue the LR finder for config's last stage (the teacher; a student only on cached features).

    Its result lands in the job record: every tab asking for the same curve finds it there.
    """
    records.validate(config)
    lr_finder.require_allowed(identity, config, features_dir(base))
    title = _("LR finder · {title}").format(title=config.title())
    return _enqueue(
        base,
        identity,
        _record(identity, JobKind.LR_FIND, lr_finder.lr_finder_key(config), title, config, dataset),
        queue,
    )


def submit_extract(
    base: Path, identity: Identity, config: RunConfig, dataset: DatasetSpec, queue: Executor | None = None
) -> tuple[JobRecord, bool]:
    """Teacher: queue the extraction of the body features config's fast first stage trains on."""
    if not identity.is_teacher:
        raise Forbidden(
            _(
                "In class mode the teacher prepares the body features (one pass over every image). Ask the "
                "teacher; once they are cached, the LR finder and stage 1 take seconds."
            )
        )
    records.validate(config)
    first = config.stages[0]
    if not first.fast:
        raise records.ConfigError(_("Body features are cached only for a fast stage 1 (*Fast: cached body features*)."))
    one = replace(config, stages=(first,))
    key = feature_spec(one, first).key
    title = _("body features · {title}").format(title=one.title())
    return _enqueue(base, identity, _record(identity, JobKind.EXTRACT, key, title, one, dataset), queue)


def submit_patch_index(
    base: Path, identity: Identity, request: PatchIndexRequest, dataset: DatasetSpec, queue: Executor | None = None
) -> tuple[JobRecord, bool]:
    """Queue a patch index (anyone: a bounded, idempotent shared cache; a student's covers at most
    STUDENT_PATCH_IMAGES images). Only the teacher can stop it."""
    if not identity.is_teacher and len(request.paths) > STUDENT_PATCH_IMAGES:
        raise Forbidden(
            _(
                "In class mode a student's patch index covers at most {n} images: scan fewer, or ask the teacher."
            ).format(n=STUDENT_PATCH_IMAGES)
        )
    title = _("patch index · {stage} · {n} images").format(stage=request.stage, n=len(request.paths))
    record = _record(identity, JobKind.PATCH_INDEX, request.key, title, None, dataset, patch=request)
    return _enqueue(base, identity, record, queue)


def lesson_plan(
    fingerprint: str,
    arch: str = lesson.WORKSHOP.arch,
    img_size: int = lesson.WORKSHOP.img_size,
    epochs1: int = lesson.WORKSHOP.epochs1,
    epochs2: int = lesson.WORKSHOP.epochs2,
) -> list[tuple[str, RunConfig]]:
    """The lesson's runs in order (core.train.lesson.plan) with the Training page's defaults, so students find them
    there: stage 1 frozen (cached features), stage 2 unfrozen with slice(1e-6, 1e-4), and the lesson's
    mistake (unfrozen at 1e-3 for every layer group, as many epochs as stage 2)."""
    settings = replace(lesson.WORKSHOP, arch=arch, img_size=img_size, epochs1=epochs1, epochs2=epochs2,
                       mistake_epochs=epochs2)  # fmt: skip
    return lesson.plan(settings, fingerprint)


def stop_job(base: Path, identity: Identity, job_id: str) -> JobRecord:
    """Teacher: cancel a queued job, or ask a running one to stop after its current batch."""
    require(identity, "stop")
    with locked(base):
        record = load_job(base, job_id)
        if record.status == JobStatus.QUEUED:
            record.status, record.finished = JobStatus.CANCELLED, time.time()
        elif record.status == JobStatus.RUNNING:
            record.stop_requested = True  # the job's next progress event ends it
            if record.kind == JobKind.TRAIN:
                training_lock.request_stop(runs_dir(base))
        else:
            raise JobError(_("Job {job_id} is already {status}.").format(job_id=job_id, status=record.status.label))
        save_job(base, record)
        return record


def clear_unreadable(base: Path, identity: Identity) -> int:
    """Teacher: delete the job records set aside as unreadable (core.teach.job_records.quarantine); returns how many."""
    require(identity, "stop")
    return clear_quarantine(base)


# ---- running a job (in the worker) ----------------------------------------------------------------


def _claim(base: Path, record: JobRecord) -> JobRecord:
    """Mark a queued job running in this process (under the records lock: no two workers take one job)."""
    record.status, record.started, record.updated = JobStatus.RUNNING, time.time(), time.time()
    record.pid, record.host = os.getpid(), socket.gethostname()
    save_job(base, record)
    return record


def execute_next(base: Path, scan_fn: Callable | None = None) -> JobRecord | None:
    """What a queue message does: run the job that is next in fair order (next_in_line), whichever message woke
    the worker; None when nothing waits (its job was cancelled, or an earlier message ran it)."""
    base = Path(base)
    with locked(base):
        job_id = next_in_line(index(base))
        if job_id is None:
            return None
        record = _claim(base, load_job(base, job_id))
    return _execute_claimed(base, record, scan_fn)


def execute(base: Path, job_id: str, scan_fn: Callable | None = None) -> JobRecord:
    """Run this one queued job to its end: done, stopped, failed (with the reason) or skipped if cancelled."""
    base = Path(base)
    with locked(base):
        record = load_job(base, job_id)
        if record.status != JobStatus.QUEUED:
            return record  # cancelled while it waited
        _claim(base, record)
    return _execute_claimed(base, record, scan_fn)


@dataclass(frozen=True)
class Outcome:
    """How a job ended: the fields of its record the worker writes last."""

    status: JobStatus
    error: str = ""
    run_id: str = ""
    reused: bool = False
    result: LRFinderResult | None = None


def _execute_claimed(
    base: Path,
    record: JobRecord,
    scan_fn: Callable | None,
    observer: Callable[[TrainEvent], None] | None = None,
    wait: bool = True,
) -> JobRecord:
    """Run a claimed job: done, stopped or failed (with the reason); interrupted (a BaseException: the thread
    is stopped), it is recorded stopped and the interruption goes on. observer sees every event first."""
    job_id = record.job_id
    last_write = 0.0
    epochs: list[EpochRow] = []

    def on_event(event: TrainEvent) -> None:
        nonlocal last_write
        if observer is not None:
            observer(event)
        now = time.time()
        event = replace(event, time=now)
        if event.row is not None:
            epochs.append(event.row)
        if event.kind in (EventKind.STAGE, EventKind.EPOCH) or now - last_write >= 1.0:
            last_write = now
            current = update_job(base, job_id, last=event, updated=now, epochs=list(epochs))
            if current.stop_requested:
                raise training_lock.TrainingStopped(STOPPED_BY_TEACHER)

    try:
        quotas.require_free_space(base)  # every kind writes a run or a cache: below the floor, none starts
        outcome = _run(base, record, on_event, scan_fn or datasets.scan_dataset, wait)
    except training_lock.TrainingStopped as err:
        outcome = Outcome(JobStatus.STOPPED, error=str(err).split("\n")[-1] or STOPPED)
    except (records.ConfigError, models.WeightsUnavailable, datasets.DatasetError, quotas.QuotaError,
            training_lock.TrainingBusy) as err:  # fmt: skip
        outcome = Outcome(JobStatus.FAILED, error=str(err))
    except Exception as err:  # the worker keeps serving the queue; the page shows why this job failed
        if quotas.is_disk_full(err):  # a run or cache write hit a full disk: its temp files are gone
            outcome = Outcome(JobStatus.FAILED, error=str(quotas.disk_full_error(base, _(quotas.NOTHING_SAVED))))
        else:
            outcome = Outcome(JobStatus.FAILED, error=f"{type(err).__name__}: {err}")
    except BaseException:  # the thread was stopped (a page's rerun or Stop, the process ending): never left running
        with contextlib.suppress(Exception):
            update_job(base, job_id, finished=time.time(), updated=time.time(), epochs=epochs,
                       status=JobStatus.STOPPED, error=INTERRUPTED)  # fmt: skip
        raise
    ended = {f.name: getattr(outcome, f.name) for f in fields(outcome)}
    return update_job(base, job_id, finished=time.time(), updated=time.time(), epochs=epochs, **ended)


def _run(
    base: Path, record: JobRecord, on_event: Callable[[TrainEvent], None], scan_fn: Callable, wait: bool = True
) -> Outcome:
    """Do the job's work by its kind; returns how it ended."""
    from core.train import lr_finder

    if record.kind == JobKind.PATCH_INDEX:
        patch = record.patch
        patches.build_requested_index(
            patch, base, runs_dir(base), lambda i, n: on_event(TrainEvent(EventKind.INDEX, i=i, n=n))
        )
        return Outcome(JobStatus.DONE)
    scan = scan_fn(record.dataset)
    if record.kind == JobKind.LR_FIND:
        found = lr_finder.find_lr(record.config, scan, runs_dir(base), features_dir(base), on_event=on_event, wait=wait)
        return Outcome(JobStatus.DONE, result=found)
    if record.kind == JobKind.EXTRACT:
        learners.extract_features(record.config, scan, features_dir(base), on_event=on_event)
        return Outcome(JobStatus.DONE)
    result = training.train_run(
        record.config,
        scan,
        runs_dir(base),
        features_dir(base),
        on_event=on_event,
        lr_finder=record.lr_finder,
        retrain=record.retrain,
        wait=wait,
    )
    return Outcome(JobStatus.DONE, run_id=result.run.run_id, reused=result.reused)
