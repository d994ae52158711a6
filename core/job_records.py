"""Job records and events: what a job is and how it goes, one JSON file per job in `<data>/jobs/`.

Every tab reads the queue and the live progress from these records (written atomically under a
lock), so jobs outlive the tab that queued them. A worker that dies mid-job leaves a job marked
`running` by a dead process: `reconcile` marks it failed with the reason and removes the
half-written temp folders. The queue itself is core.jobs, the worker process core.worker.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from core import live, records, repair, settings, training_lock
from core.datasets import DatasetSpec
from core.features import shown_progress
from core.i18n import N_, _, num
from core.lr_finder import LRFinderResult
from core.patches import PatchIndexRequest
from core.records import RunConfig
from core.settings import features_dir, runs_dir
from core.storage import atomic_write_json, read_json

WORKER_FILE = "worker.json"
STATUSES = ("queued", "running", "done", "failed", "stopped", "cancelled")
# each status as shown (translated where shown: _(STATUS_NAMES[status]))
STATUS_NAMES = {
    "queued": N_("queued"),
    "running": N_("running"),
    "done": N_("done"),
    "failed": N_("failed"),
    "stopped": N_("stopped"),
    "cancelled": N_("cancelled"),
}
# a reason the worker stores in a job record (in English: it has no language); translated where shown
WORKER_DIED = N_(
    "The worker stopped while this job was running (killed or crashed): nothing was saved. Queue it again."
)
ACTIVE = ("queued", "running")
# what a job does; every kind but "train" fills a shared cache, so it is queued once per key
JOB_KINDS = ("train", "lr_find", "extract", "patch_index")
STALE_SECONDS = 300.0  # a running job on another machine with no news for this long has lost its worker


class JobError(ValueError):
    """A job that cannot be found, queued or changed; the message is meant for the page."""


@dataclass(frozen=True)
class JobEvent:
    """One progress event of a running job (the typed form of core.training's event dicts)."""

    kind: str  # "extract" | "stage" | "batch" | "epoch" | "lr_find" | "index"
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
        if self.kind in ("extract", "index") and self.n:
            return min(1.0, (self.i or 0) / self.n)
        return None

    def text(self, config: RunConfig | None = None) -> str:
        """One line for a progress bar, in the current language (config: the job's, to name its stage)."""
        if self.kind == "batch":
            return _("stage {stage} · epoch {epoch}/{n_epoch} · batch {iter}/{n_iter} · loss {loss}").format(
                stage=(self.stage or 0) + 1,
                epoch=(self.epoch or 0) + 1,
                n_epoch=self.n_epoch,
                iter=self.iter,
                n_iter=self.n_iter,
                loss=num(self.loss or 0.0, 3),
            )
        if self.kind == "extract":
            return _("extracting body features: {what} ({i}/{n})").format(
                what=shown_progress(self.what), i=self.i, n=self.n
            )
        if self.kind == "stage":
            stage = self.stage or 0
            describe = self.describe
            if config is not None and stage < len(config.stages):
                describe = config.stages[stage].describe(_)  # in the current language
            return _("stage {stage}: {describe}").format(stage=stage + 1, describe=describe)
        if self.kind == "epoch":
            return _("epoch {epoch} done").format(epoch=(self.row or {}).get("epoch", 0) + 1)
        if self.kind == "lr_find":
            return _("lr_find: {n} mini-batches at growing learning rates").format(n=self.n)
        if self.kind == "index":
            return _("indexing the top patches: {i}/{n} images").format(i=self.i, n=self.n)
        return self.kind


@dataclass
class JobRecord:
    """A queued job (a training, an LR finder, a feature extraction, a patch index): what, who, how it went."""

    job_id: str
    title: str
    config: RunConfig | None  # None for a patch index
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
    kind: str = "train"  # a key of JOB_KINDS
    key: str = ""  # the shared cache a non-training job fills: one active job per (kind, key)
    patch: PatchIndexRequest | None = None  # kind "patch_index"
    result: LRFinderResult | None = None  # kind "lr_find", once done

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def shown_title(self) -> str:
        """The title in the current language (the stored one is in the language of whoever queued it)."""
        if self.kind == "patch_index" and self.patch is not None:
            return _("patch index · {stage} · {n} images").format(stage=self.patch.stage, n=len(self.patch.paths))
        if self.config is None or not self.config.stages:
            return self.title
        title = self.config.title(_)
        if self.kind == "lr_find":
            return _("LR finder · {title}").format(title=title)
        if self.kind == "extract":
            return _("body features · {title}").format(title=title)
        return title

    def shown_error(self) -> str:
        """Why it ended as it did, in the current language where the reason is one of the known messages."""
        return _(self.error) if self.error else ""

    @property
    def tab(self) -> str:
        """The tab that queued it (queued_by is "<role>:<tab>")."""
        return self.queued_by.partition(":")[2]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> JobRecord:
        """Parse a stored record; raises ValueError naming what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("a job record is a JSON object")
        try:
            data = dict(data)
            data["config"] = records.config_from_dict(data["config"]) if data["config"] is not None else None
            data["dataset"] = DatasetSpec(**data["dataset"])
            data["last"] = JobEvent(**data["last"]) if data.get("last") else None
            data["patch"] = PatchIndexRequest.from_json(data["patch"]) if data.get("patch") else None
            data["result"] = LRFinderResult.from_json(data["result"]) if data.get("result") else None
            record = cls(**data)
        except (KeyError, TypeError) as err:
            raise ValueError(f"a job record lacks or mistypes a field: {err}") from err
        if record.status not in STATUSES:
            raise ValueError(f"unknown job status {record.status!r}")
        if record.kind not in JOB_KINDS:
            raise ValueError(f"unknown job kind {record.kind!r}")
        if (record.kind == "patch_index") != (record.patch is not None) or (record.config is None) != (
            record.kind == "patch_index"
        ):
            raise ValueError(f"a {record.kind} job lacks what it works on (a run config or a patch-index request)")
        return record


# ---- the job store ------------------------------------------------------------------------------


def jobs_dir(base: Path) -> Path:
    path = settings.jobs_dir(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def locked(base: Path) -> Iterator[None]:
    """Serialise read-modify-write of job records between the app's threads and the worker."""
    with open(jobs_dir(base) / ".records.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _path(base: Path, job_id: str) -> Path:
    if not job_id.isalnum():
        raise JobError(_("Not a job id: {job_id}").format(job_id=repr(job_id)))
    return jobs_dir(base) / f"{job_id}.json"


def _stored_status(path: Path) -> str | None:
    try:
        return read_json(path).get("status")
    except (ValueError, AttributeError):
        return None


def save_job(base: Path, record: JobRecord) -> None:
    """Write a record; a new job or a new status (not mere progress) bumps the class's live stamp."""
    path = _path(base, record.job_id)
    before = _stored_status(path)
    atomic_write_json(path, record.to_json())
    if before != record.status:
        live.bump(base, live.Channel.CLASS)


def load_job(base: Path, job_id: str) -> JobRecord:
    path = _path(base, job_id)
    if not path.is_file():
        raise JobError(_("No job {job_id}.").format(job_id=job_id))
    try:
        return JobRecord.from_json(read_json(path))
    except ValueError as err:
        raise JobError(_("Job {job_id} cannot be read: {error}").format(job_id=job_id, error=err)) from err


def update_job(base: Path, job_id: str, **changes: Any) -> JobRecord:
    """Change fields of a stored job under the records lock; returns the new record."""
    with locked(base):
        record = load_job(base, job_id)
        for key, value in changes.items():
            if not hasattr(record, key):
                raise JobError(f"A job has no field {key!r}.")
            setattr(record, key, value)
        save_job(base, record)
        return record


def read_all(base: Path) -> list[JobRecord]:
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
    found = read_all(base)
    if reconcile_dead and any(j.status == "running" for j in found) and reconcile(base, records=found):
        found = read_all(base)
    return sorted(found, key=lambda r: r.created)


def running_job(base: Path) -> JobRecord | None:
    return next((j for j in list_jobs(base) if j.status == "running"), None)


def find_job(found: list[JobRecord], kind: str, key: str, statuses: tuple[str, ...] = ACTIVE) -> JobRecord | None:
    """The newest job of this kind and key among found with one of statuses (a request joins an active one)."""
    matching = [j for j in found if j.kind == kind and j.key == key and j.status in statuses]
    return max(matching, key=lambda j: j.created) if matching else None


def jobs_ahead(found: list[JobRecord], record: JobRecord) -> int:
    """How many jobs the worker runs before this queued one (the running one included)."""
    return sum(1 for j in found if j.active and j.created < record.created) if record.status == "queued" else 0


def process_alive(pid: int | None) -> bool:
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
    for record in read_all(base) if records is None else records:
        if record.status != "running":
            continue
        gone = not process_alive(record.pid) if record.host == host else now - (record.updated or 0) > STALE_SECONDS
        if gone:
            with locked(base):
                current = load_job(base, record.job_id)
                if current.status == "running" and current.pid == record.pid:
                    current.status, current.finished = "failed", now
                    current.error = WORKER_DIED
                    save_job(base, current)
                    failed.append(record.job_id)
                    clean_job_leftovers(base, current)
    if failed:
        clean_half_runs(runs_dir(base))
    return failed


def fail_jobs_of(base: Path, pid: int, reason: str) -> list[str]:
    """Mark failed the running jobs of process pid (a worker shutting down mid-job); returns their ids."""
    failed = []
    with locked(base):
        for record in list_jobs(base, reconcile_dead=False):
            if record.status == "running" and record.pid == pid and record.host == socket.gethostname():
                record.status, record.finished, record.error = "failed", time.time(), reason
                save_job(base, record)
                failed.append(record.job_id)
                clean_job_leftovers(base, record)
    return failed


def clean_job_leftovers(base: Path, record: JobRecord) -> list[str]:
    """Remove the hidden temp files a killed job was writing its cache into (never a finished cache).

    Caches are written to a temp name and renamed into place, so a killed job leaves no half cache,
    only its temp: `.tmp-<feature key>-*` in features/, `.<index key>.npz.*.tmp` in patch_index/.
    """
    from core.features import feature_spec

    patterns: list[tuple[Path, str]] = []
    if record.config is not None and record.config.stages[0].fast:
        key = feature_spec(record.config, record.config.stages[0]).key
        patterns.append((features_dir(base), f".tmp-{key}*"))
    if record.patch is not None:
        index = record.patch.path(Path(base))
        patterns.append((index.parent, f".{index.name}.*.tmp"))
    removed = []
    for folder, pattern in patterns:
        for path in folder.glob(pattern) if folder.is_dir() else []:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def clean_half_runs(runs_dir: Path) -> list[str]:
    """After a worker died: repair runs/ at once (no age wait: its job is known dead), and drop its stop request.

    core.repair.repair_runs first rolls an interrupted retrain swap forward or back, so a `.old-*` folder
    that holds the only complete copy of a run is restored, not removed.
    """
    done = repair.repair_runs(runs_dir, max_age=0)
    try:
        with training_lock.training_lock(runs_dir):
            training_lock.clear_stop(runs_dir)
    except (training_lock.TrainingBusy, OSError):
        pass
    return done
