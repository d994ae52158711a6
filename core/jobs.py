"""Training as background jobs: queued by the teacher, run one at a time by a worker process.

The queue is huey's: by default SqliteHuey in `<data>/jobs/queue.db` (no service to install); with
$PETLAB_QUEUE=redis://host:port/db, RedisHuey, so workers can run on other machines that mount the
same data folder (see README, "Class mode"). The broker carries only job ids. What a job is and how
it goes is a JobRecord, a JSON file per job in `<data>/jobs/`, written atomically under a lock:
every tab reads the queue and the live progress from there, so jobs outlive the tab that queued them.

The worker (core.worker) runs each job through core.training.train_run, which stores a run only
when it is complete. A worker that dies mid-job leaves a job marked `running` by a dead process:
`reconcile` marks it failed with the reason and removes the half-written temp folders.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from core import records, training_lock
from core.auth import Identity, require
from core.datasets import DatasetSpec
from core.records import RunConfig, StageConfig
from core.storage import atomic_write_json, read_json

QUEUE_ENV = "PETLAB_QUEUE"  # unset: SQLite in the data folder; redis://host:port/db: a Redis broker
JOBS_DIR = "jobs"
QUEUE_FILE = "queue.db"
WORKER_LOCK = "worker.lock"
WORKER_FILE = "worker.json"
TASK_NAME = "petlab.run_job"
STATUSES = ("queued", "running", "done", "failed", "stopped", "cancelled")
ACTIVE = ("queued", "running")
STALE_SECONDS = 300.0
APP_WORKER_IDLE_EXIT = 600.0  # a worker the app started stops after this long with nothing queued  # a running job on another machine with no news for this long has lost its worker
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class JobError(ValueError):
    """A job that cannot be found, queued or changed; the message is meant for the page."""


@dataclass(frozen=True)
class JobEvent:
    """One progress event of a running job (the typed form of core.training's event dicts)."""

    kind: str  # "extract" | "stage" | "batch" | "epoch"
    stage: int | None = None
    describe: str = ""
    epoch: int | None = None
    n_epoch: int | None = None
    iter: int | None = None
    n_iter: int | None = None
    loss: float | None = None
    lr: float | None = None
    what: str = ""
    i: int | None = None
    n: int | None = None
    row: dict | None = None
    time: float = 0.0

    @classmethod
    def from_training(cls, event: dict, now: float | None = None) -> JobEvent:
        """Build from a core.training event; unknown keys are dropped, a missing kind is an error."""
        if "kind" not in event:
            raise ValueError("A training event needs a kind.")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in event.items() if k in known}, time=now or time.time())

    @property
    def fraction(self) -> float | None:
        """How far the current step is, 0..1 (batches within the stage's epochs, or extraction)."""
        if self.kind == "batch" and self.n_iter and self.n_epoch:
            return min(1.0, ((self.epoch or 0) + (self.iter or 0) / self.n_iter) / self.n_epoch)
        if self.kind == "extract" and self.n:
            return min(1.0, (self.i or 0) / self.n)
        return None

    def text(self) -> str:
        if self.kind == "batch":
            return (f"stage {(self.stage or 0) + 1} · epoch {(self.epoch or 0) + 1}/{self.n_epoch} · batch "
                    f"{self.iter}/{self.n_iter} · loss {self.loss:.3f}")  # fmt: skip
        if self.kind == "extract":
            return f"extracting body features: {self.what} ({self.i}/{self.n})"
        if self.kind == "stage":
            return f"stage {(self.stage or 0) + 1}: {self.describe}"
        if self.kind == "epoch":
            return f"epoch {(self.row or {}).get('epoch', 0) + 1} done"
        return self.kind


@dataclass
class JobRecord:
    """A queued training: what to train, who queued it, and how it went."""

    job_id: str
    title: str
    config: RunConfig
    dataset: DatasetSpec
    status: str = "queued"
    retrain: bool = False
    lr_finder: dict | None = None
    queued_by: str = ""  # the role and tab that queued it
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    updated: float | None = None  # last news from the worker (a heartbeat while running)
    error: str = ""
    run_id: str = ""
    reused: bool = False
    pid: int | None = None
    host: str = ""
    stop_requested: bool = False
    last: JobEvent | None = None
    epochs: list[dict] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> JobRecord:
        """Parse a stored record; raises ValueError naming what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("a job record is a JSON object")
        try:
            data = dict(data)
            data["config"] = records.config_from_dict(data["config"])
            data["dataset"] = DatasetSpec(**data["dataset"])
            data["last"] = JobEvent(**data["last"]) if data.get("last") else None
            record = cls(**data)
        except (KeyError, TypeError) as err:
            raise ValueError(f"a job record lacks or mistypes a field: {err}") from err
        if record.status not in STATUSES:
            raise ValueError(f"unknown job status {record.status!r}")
        return record


# ---- the job store ------------------------------------------------------------------------------


def jobs_dir(base: Path) -> Path:
    path = Path(base) / JOBS_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _locked(base: Path) -> Iterator[None]:
    """Serialise read-modify-write of job records between the app's threads and the worker."""
    with open(jobs_dir(base) / ".records.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _path(base: Path, job_id: str) -> Path:
    if not job_id.isalnum():
        raise JobError(f"Not a job id: {job_id!r}")
    return jobs_dir(base) / f"{job_id}.json"


def save_job(base: Path, record: JobRecord) -> None:
    atomic_write_json(_path(base, record.job_id), record.to_json())


def load_job(base: Path, job_id: str) -> JobRecord:
    path = _path(base, job_id)
    if not path.is_file():
        raise JobError(f"No job {job_id}.")
    try:
        return JobRecord.from_json(read_json(path))
    except ValueError as err:
        raise JobError(f"Job {job_id} cannot be read: {err}") from err


def update_job(base: Path, job_id: str, **changes: Any) -> JobRecord:
    """Change fields of a stored job under the records lock; returns the new record."""
    with _locked(base):
        record = load_job(base, job_id)
        for key, value in changes.items():
            if not hasattr(record, key):
                raise JobError(f"A job has no field {key!r}.")
            setattr(record, key, value)
        save_job(base, record)
        return record


def _read_all(base: Path) -> list[JobRecord]:
    found = []
    for path in jobs_dir(base).glob("*.json"):
        if path.name == WORKER_FILE:
            continue
        try:
            found.append(JobRecord.from_json(read_json(path)))
        except ValueError:
            continue  # a broken record is skipped, never a crash
    return found


def list_jobs(base: Path, reconcile_dead: bool = True) -> list[JobRecord]:
    """Every readable job, oldest first; running jobs whose worker died are marked failed first."""
    found = _read_all(base)
    if reconcile_dead and any(j.status == "running" for j in found) and reconcile(base, records=found):
        found = _read_all(base)
    return sorted(found, key=lambda r: r.created)


def running_job(base: Path) -> JobRecord | None:
    return next((j for j in list_jobs(base) if j.status == "running"), None)


# ---- the queue ----------------------------------------------------------------------------------


@dataclass
class Queue:
    """A huey instance and its one task, `petlab.run_job(job_id)`, which runs the job where it is consumed."""

    huey: Any
    run_job: Any  # huey's TaskWrapper: calling it enqueues

    @property
    def kind(self) -> str:
        return "redis" if type(self.huey).__name__ == "RedisHuey" else "sqlite"


def make_queue(base: Path, url: str | None = None) -> Queue:
    """The queue for this data folder: Redis when url (or $PETLAB_QUEUE) names one, else SQLite in jobs/."""
    from huey import RedisHuey, SqliteHuey

    url = url if url is not None else os.environ.get(QUEUE_ENV, "")
    if url.startswith(("redis://", "rediss://", "unix://")):
        huey = RedisHuey("petlab", url=url, results=False)
    elif url:
        raise JobError(f"{QUEUE_ENV} must be empty (SQLite) or a redis:// URL, not {url!r}.")
    else:
        huey = SqliteHuey("petlab", filename=str(jobs_dir(base) / QUEUE_FILE), results=False, strict_fifo=True)
    base = Path(base)

    def run_job(job_id: str) -> None:
        execute(base, job_id)

    return Queue(huey, huey.task(name=TASK_NAME)(run_job))


def submit(
    base: Path,
    identity: Identity,
    config: RunConfig,
    dataset: DatasetSpec,
    retrain: bool = False,
    lr_finder: dict | None = None,
    queue: Queue | None = None,
) -> JobRecord:
    """Teacher: queue a training of config on dataset; returns its record (status `queued`)."""
    require(identity, "train")
    records.validate(config)
    job_id = f"{time.strftime('%Y%m%d%H%M%S')}{uuid.uuid4().hex[:6]}"
    record = JobRecord(
        job_id=job_id,
        title=config.title(),
        config=config,
        dataset=dataset,
        retrain=retrain,
        lr_finder=lr_finder,
        queued_by=f"{identity.role}:{identity.tab}",
        created=time.time(),
    )
    with _locked(base):
        save_job(base, record)
    (queue or make_queue(base)).run_job(job_id)
    return load_job(base, job_id)


def lesson_plan(
    fingerprint: str, arch: str = "mobilenet_v2", img_size: int = 64, epochs1: int = 2, epochs2: int = 1
) -> list[tuple[str, RunConfig]]:
    """The lesson's runs in order, with the Training page's defaults so students find them there:
    stage 1 frozen (cached features), stage 2 unfrozen with slice(1e-6, 1e-4), and the lesson's
    mistake (unfrozen at 1e-3 for every layer group)."""
    stage1 = StageConfig(epochs=epochs1, lr_max=3e-3, fast=True)
    base = RunConfig(dataset=fingerprint, arch=arch, img_size=img_size, bs=16, seed=42, stages=(stage1,))
    stage2 = StageConfig(epochs=epochs2, lr_max=1e-4, lr_min=1e-6, unfreeze=True)
    mistake = StageConfig(epochs=epochs2, lr_max=1e-3, unfreeze=True)
    return [
        ("stage 1: body frozen", base),
        ("stage 2: unfrozen, slice(1e-6, 1e-4)", replace(base, stages=(stage1, stage2))),
        ("the mistake: unfrozen at 1e-3", replace(base, stages=(stage1, mistake))),
    ]


def stop_job(base: Path, identity: Identity, job_id: str) -> JobRecord:
    """Teacher: cancel a queued job, or ask a running one to stop after its current batch."""
    require(identity, "stop")
    with _locked(base):
        record = load_job(base, job_id)
        if record.status == "queued":
            record.status, record.finished = "cancelled", time.time()
        elif record.status == "running":
            record.stop_requested = True
            training_lock.request_stop(Path(base) / "runs")
        else:
            raise JobError(f"Job {job_id} is already {record.status}.")
        save_job(base, record)
        return record


# ---- running a job (in the worker) ----------------------------------------------------------------


def execute(base: Path, job_id: str, scan_fn: Callable | None = None) -> JobRecord:
    """Run one queued job to its end: done, stopped, failed (with the reason) or skipped if cancelled."""
    from core import datasets, models, training

    base = Path(base)
    with _locked(base):
        record = load_job(base, job_id)
        if record.status != "queued":
            return record  # cancelled while it waited
        record.status, record.started, record.updated = "running", time.time(), time.time()
        record.pid, record.host = os.getpid(), socket.gethostname()
        save_job(base, record)

    last_write = 0.0
    epochs: list[dict] = []

    def on_event(event: dict) -> None:
        nonlocal last_write
        typed = JobEvent.from_training(event)
        if typed.kind == "epoch" and typed.row:
            epochs.append(typed.row)
        now = time.time()
        if typed.kind in ("stage", "epoch") or now - last_write >= 1.0:
            last_write = now
            current = update_job(base, job_id, last=typed, updated=now, epochs=list(epochs))
            if current.stop_requested:
                raise training_lock.TrainingStopped("Stopped by the teacher: nothing was saved.")

    outcome: dict[str, Any] = {}
    try:
        scan = (scan_fn or datasets.scan_dataset)(record.dataset)
        result = training.train_run(
            record.config,
            scan,
            base / "runs",
            base / "features",
            on_event=on_event,
            lr_finder=record.lr_finder,
            retrain=record.retrain,
            wait=True,
        )
        outcome = {"status": "done", "run_id": result.run.run_id, "reused": result.reused}
    except training_lock.TrainingStopped as err:
        outcome = {"status": "stopped", "error": str(err).split("\n")[-1] or "Stopped."}
    except (records.ConfigError, models.WeightsUnavailable, datasets.DatasetError) as err:
        outcome = {"status": "failed", "error": str(err)}
    except Exception as err:  # the worker keeps serving the queue; the page shows why this job failed
        outcome = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
    return update_job(base, job_id, finished=time.time(), updated=time.time(), epochs=epochs, **outcome)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reconcile(base: Path, now: float | None = None, records: list[JobRecord] | None = None) -> list[str]:
    """Mark failed every running job whose worker is gone; remove half-written run folders. Returns their ids."""
    now = now or time.time()
    host = socket.gethostname()
    failed = []
    for record in _read_all(base) if records is None else records:
        if record.status != "running":
            continue
        gone = not _alive(record.pid) if record.host == host else now - (record.updated or 0) > STALE_SECONDS
        if gone:
            with _locked(base):
                current = load_job(base, record.job_id)
                if current.status == "running" and current.pid == record.pid:
                    current.status, current.finished = "failed", now
                    current.error = (
                        "The worker stopped while this job was running (killed or crashed): nothing was saved. "
                        "Queue it again."
                    )
                    save_job(base, current)
                    failed.append(record.job_id)
    if failed:
        clean_half_runs(Path(base) / "runs")
    return failed


def fail_jobs_of(base: Path, pid: int, reason: str) -> list[str]:
    """Mark failed the running jobs of process pid (a worker shutting down mid-job); returns their ids."""
    failed = []
    with _locked(base):
        for record in list_jobs(base, reconcile_dead=False):
            if record.status == "running" and record.pid == pid and record.host == socket.gethostname():
                record.status, record.finished, record.error = "failed", time.time(), reason
                save_job(base, record)
                failed.append(record.job_id)
    return failed


def clean_half_runs(runs_dir: Path) -> list[str]:
    """Remove temp folders a killed training left in runs/ (only while no training holds the lock)."""
    removed: list[str] = []
    if not Path(runs_dir).is_dir():
        return removed
    try:
        with training_lock.training_lock(runs_dir):
            for path in Path(runs_dir).iterdir():
                if path.is_dir() and path.name.startswith((".work-", ".tmp-", ".lrfind-", ".old-", ".del-")):
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path.name)
            training_lock.clear_progress(runs_dir)
            training_lock.clear_stop(runs_dir)
    except training_lock.TrainingBusy:
        pass
    return removed


# ---- the worker process ---------------------------------------------------------------------------


@contextmanager
def worker_lock(base: Path) -> Iterator[bool]:
    """Hold the data folder's worker lock; yields False (and holds nothing) when another worker has it."""
    with open(jobs_dir(base) / WORKER_LOCK, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def worker_running(base: Path) -> bool:
    """True while a worker process holds this data folder's worker lock."""
    with worker_lock(base) as free:
        return not free


def ensure_worker(base: Path, env: dict | None = None) -> int | None:
    """Start a worker for this data folder unless one runs; returns the new process id (or None).

    It runs in its own session (closing tabs or stopping the app never kills a job) and exits once it
    has had nothing to do for APP_WORKER_IDLE_EXIT seconds.
    """
    if worker_running(base):
        return None
    log = open(jobs_dir(base) / "worker.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.worker", "--data", str(base), "--idle-exit", str(APP_WORKER_IDLE_EXIT)],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # not killed with the app's process group; closing a tab never stops it
    )
    log.close()
    return proc.pid


def worker_info(base: Path) -> dict | None:
    """The running worker's last heartbeat (pid, threads, queue, time), or None."""
    try:
        data = read_json(jobs_dir(base) / WORKER_FILE)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def stop_worker(base: Path, timeout: float = 10.0) -> bool:
    """Ask the local worker to stop (SIGTERM) and wait for its lock to be released."""
    info = worker_info(base) or {}
    pid = info.get("pid")
    if not pid or not _alive(pid):
        return not worker_running(base)
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not worker_running(base):
            return True
        time.sleep(0.1)
    return False
