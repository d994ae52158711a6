"""Job records and events: what a job is and how it goes, one JSON file per job in `<data>/jobs/`.

Every tab reads the queue and the live progress from these records (written atomically under a
lock), so jobs outlive the tab that queued them. A worker that dies mid-job leaves a job marked
`running` by a dead process: `reconcile` marks it failed with the reason and removes the
half-written temp folders. The queue itself is core.teach.jobs, the worker process core.teach.worker.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from core import codec, settings
from core.auth import LAPTOP, TEACHER
from core.data.datasets import DatasetSpec
from core.i18n import N_, _, num
from core.inside.patches import PatchIndexRequest
from core.nets.models import stage_label
from core.nets.schedules import lr_text
from core.settings import features_dir, runs_dir
from core.storage import atomic_write_bytes, atomic_write_json, read_json
from core.store import live, records, repair, training_lock
from core.store.records import EpochRow, EventKind, LRFinderResult, RunConfig, TrainEvent
from core.train.features import feature_spec, shown_progress

WORKER_FILE = "worker.json"


class JobStatus(StrEnum):
    """How a job stands (its JSON value is the stored "status"); `label` is how a page names it."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        """The status as shown, in the current language."""
        return _(STATUS_NAMES[self])

    @property
    def active(self) -> bool:
        """Waiting or running: not ended."""
        return self in ACTIVE


# each status as shown (translated where shown: JobStatus.label)
STATUS_NAMES = {
    JobStatus.QUEUED: N_("queued"),
    JobStatus.RUNNING: N_("running"),
    JobStatus.DONE: N_("done"),
    JobStatus.FAILED: N_("failed"),
    JobStatus.STOPPED: N_("stopped"),
    JobStatus.CANCELLED: N_("cancelled"),
}
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
ENDED = (JobStatus.DONE, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELLED)


class JobKind(StrEnum):
    """What a job does (its JSON value is the stored "kind"); every kind but TRAIN fills a shared cache, so it is
    queued once per key."""

    TRAIN = "train"
    LR_FIND = "lr_find"
    EXTRACT = "extract"
    PATCH_INDEX = "patch_index"


# a reason the worker stores in a job record (in English: it has no language); translated where shown
WORKER_DIED = N_(
    "The worker stopped while this job was running (killed or crashed): nothing was saved. Queue it again."
)
_JOB_ID = re.compile(r"^[A-Za-z0-9]{1,40}$")
STALE_SECONDS = 300.0  # a running job on another machine with no news for this long has lost its worker


class JobError(ValueError):
    """A job that cannot be found, queued or changed; the message is meant for the page."""


def event_text(event: TrainEvent, config: RunConfig | None = None) -> str:
    """One line for a job's progress bar, in the current language (config: the job's, to name its stage)."""
    if event.kind == EventKind.BATCH:
        return _("stage {stage} · epoch {epoch}/{n_epoch} · batch {iter}/{n_iter} · loss {loss}").format(
            stage=(event.stage or 0) + 1,
            epoch=(event.epoch or 0) + 1,
            n_epoch=event.n_epoch,
            iter=event.iter,
            n_iter=event.n_iter,
            loss=num(event.loss or 0.0, 3),
        ) + ("" if event.lr is None else " · " + _("lr {lr}").format(lr=lr_text(event.lr)))
    if event.kind == EventKind.EXTRACT:
        return _("extracting body features: {what} ({i}/{n})").format(
            what=shown_progress(event.what), i=event.i, n=event.n
        )
    if event.kind == EventKind.STAGE:
        stage = event.stage or 0
        describe = event.describe
        if config is not None and stage < len(config.stages):
            describe = config.stages[stage].describe(_)  # in the current language
        return _("stage {stage}: {describe}").format(stage=stage + 1, describe=describe)
    if event.kind == EventKind.EPOCH:
        return _("epoch {epoch} done").format(epoch=(event.row.epoch if event.row is not None else 0) + 1)
    if event.kind == EventKind.LR_FIND:
        return _("lr_find: {n} mini-batches at growing learning rates").format(n=event.n)
    return _("indexing the top patches: {i}/{n} images").format(i=event.i, n=event.n)  # EventKind.INDEX


@dataclass
class JobRecord:
    """A queued job (a training, an LR finder, a feature extraction, a patch index): what, who, how it went."""

    job_id: str
    title: str
    config: RunConfig | None  # None for a patch index
    dataset: DatasetSpec
    status: JobStatus = JobStatus.QUEUED
    retrain: bool = False
    lr_finder: LRFinderResult | None = None
    queued_by: str = ""  # the role and tab that queued it
    client: str = ""  # the student who queued it, by computer (core.auth.client_key): limits and turns count it
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
    last: TrainEvent | None = None
    epochs: list[EpochRow] = field(default_factory=list)
    kind: JobKind = JobKind.TRAIN
    key: str = ""  # the shared cache a non-training job fills: one active job per (kind, key)
    patch: PatchIndexRequest | None = None  # kind PATCH_INDEX
    result: LRFinderResult | None = None  # kind LR_FIND, once done

    @property
    def active(self) -> bool:
        return self.status.active

    def shown_title(self) -> str:
        """The title in the current language (the stored one is in the language of whoever queued it)."""
        if self.kind == JobKind.PATCH_INDEX and self.patch is not None:
            stage = stage_label(self.patch.arch, self.patch.stage)  # "features.3", not its module path "0.0.3"
            return _("patch index · {stage} · {n} images").format(stage=stage, n=num(len(self.patch.paths)))
        if self.config is None or not self.config.stages:
            return self.title
        title = self.config.title(_)
        if self.kind == JobKind.LR_FIND:
            return _("LR finder · {title}").format(title=title)
        if self.kind == JobKind.EXTRACT:
            return _("body features · {title}").format(title=title)
        return title

    def shown_error(self) -> str:
        """Why it ended as it did, in the current language where the reason is one of the known messages."""
        return _(self.error) if self.error else ""

    @property
    def tab(self) -> str:
        """The tab that queued it (queued_by is "<role>:<tab>")."""
        return self.queued_by.partition(":")[2]

    @property
    def by_teacher(self) -> bool:
        """Queued by the teacher (or the laptop's user): such jobs run before the students' (core.teach.jobs)."""
        return self.queued_by.partition(":")[0] in (TEACHER, LAPTOP)

    def __post_init__(self) -> None:
        if not valid_job_id(self.job_id):
            raise ValueError(f"job_id {self.job_id!r} is not a job id")
        if self.status not in JobStatus.__members__.values():
            raise ValueError(f"unknown job status {self.status!r}")
        if self.kind not in JobKind.__members__.values():
            raise ValueError(f"unknown job kind {self.kind!r}")
        self.status, self.kind = JobStatus(self.status), JobKind(self.kind)  # a member, also when given its value
        if (self.kind == JobKind.PATCH_INDEX) != (self.patch is not None) or (self.config is None) != (
            self.kind == JobKind.PATCH_INDEX
        ):
            raise ValueError(f"a {self.kind} job lacks what it works on (a run config or a patch-index request)")
        for name in ("created", "started", "finished", "updated"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} should be a finite time stamp")

    def to_json(self) -> dict[str, Any]:
        return records.to_json(self)

    @classmethod
    def from_json(cls, data: Any) -> JobRecord:
        """Parse a stored record, every field type-checked (core.codec.parse_dataclass, the one parser);
        raises ValueError (a RecordError) naming the first wrong field."""
        return codec.parse_dataclass(cls, data, "job record")

    def summary(self) -> JobSummary:
        """Its row in the store's index."""
        return JobSummary(self.status, self.kind, self.key, self.client, self.by_teacher, self.created,
                          self.started, self.finished)  # fmt: skip


@dataclass(frozen=True)
class JobSummary:
    """One row of the job store's index (jobs/index.json): what listing, limits and the queue order need."""

    status: JobStatus
    kind: JobKind
    key: str
    client: str
    by_teacher: bool
    created: float
    started: float | None = None
    finished: float | None = None

    def __post_init__(self) -> None:
        for name in ("created", "started", "finished"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} should be a finite time stamp")

    @property
    def active(self) -> bool:
        return self.status.active

    def to_row(self) -> list:
        """The row as stored: a JSON list in field order (the index of 20,000 jobs stays small)."""
        return [records.to_json(getattr(self, f.name)) for f in fields(self)]

    @classmethod
    def from_row(cls, row: Any) -> JobSummary:
        """Parse one index row (a JSON list in field order) through the one parser; raises ValueError (RecordError)."""
        names = [f.name for f in fields(cls)]
        if not isinstance(row, list) or len(row) != len(names):
            raise ValueError(f"a job index row is a list of {len(names)}")
        return records.parse_dataclass(cls, dict(zip(names, row, strict=True)), "job index row")


@dataclass(frozen=True)
class _StoredJob:
    """The fields of a stored job record its index row needs (unknown keys are skipped): an index rebuilt over
    thousands of old records costs one json.loads and a small parse each, not a whole JobRecord's."""

    status: JobStatus = JobStatus.QUEUED
    kind: JobKind = JobKind.TRAIN
    key: str = ""
    client: str = ""
    queued_by: str = ""
    created: float = 0.0
    started: float | None = None
    finished: float | None = None

    def summary(self) -> JobSummary:
        by_teacher = self.queued_by.partition(":")[0] in (TEACHER, LAPTOP)
        return JobSummary(self.status, self.kind, self.key, self.client, by_teacher, self.created, self.started,
                          self.finished)  # fmt: skip


def _summary_of(data: Any) -> JobSummary:
    """The index row of a stored record, read from its JSON without parsing the whole record; its fields are
    type-checked all the same (RecordError, a ValueError)."""
    return records.parse_dataclass(_StoredJob, data, "job record").summary()


# ---- the job store ------------------------------------------------------------------------------
# One JSON file per job (`jobs/<id>.json`, written atomically), and an index (`jobs/index.json`: one
# JobSummary per job) so that a tab's sidebar, which asks every few seconds, reads a few small files and
# not every record ever written (issue 18: 1.87 s per read at 20,000 records). The records are the truth:
# the index is rebuilt from them whenever the two disagree (a record added or removed behind its back, a
# crash between the two writes). Ended jobs are pruned by age and count (prune_jobs).

INDEX_FILE = "index.json"
INDEX_VERSION = 2  # 2: rows as lists (JobSummary.to_row)
QUARANTINE_DIR = "quarantine"  # unreadable records are moved here, with why, for the teacher to see
MAX_QUARANTINED = 100
KEEP_ENDED = int(os.environ.get("PETLAB_JOBS_KEPT", "1000"))  # ended jobs kept (the newest); older ones are pruned
KEEP_DAYS = float(os.environ.get("PETLAB_JOBS_DAYS", "30"))  # and none older than this
_SPECIAL = {INDEX_FILE, WORKER_FILE}
_lock_depth = threading.local()


def jobs_dir(base: Path) -> Path:
    path = settings.jobs_dir(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def locked(base: Path) -> Iterator[None]:
    """Serialise read-modify-write of job records between the app's threads and the worker (re-entrant per thread)."""
    if getattr(_lock_depth, "n", 0):
        _lock_depth.n += 1
        try:
            yield
        finally:
            _lock_depth.n -= 1
        return
    with open(jobs_dir(base) / ".records.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        _lock_depth.n = 1
        try:
            yield
        finally:
            _lock_depth.n = 0
            fcntl.flock(fh, fcntl.LOCK_UN)


def valid_job_id(job_id: object) -> bool:
    """A job id as core.teach.jobs makes them (a time stamp and hex digits): ASCII letters and digits only."""
    return isinstance(job_id, str) and bool(_JOB_ID.match(job_id))


def _path(base: Path, job_id: str) -> Path:
    if not valid_job_id(job_id):
        raise JobError(_("Not a job id: {job_id}").format(job_id=repr(job_id)))
    return jobs_dir(base) / f"{job_id}.json"


def _stored_ids(base: Path) -> set[str]:
    """The ids of the record files in jobs/ (names only: no file is opened)."""
    with os.scandir(jobs_dir(base)) as entries:
        return {
            e.name[:-5]
            for e in entries
            if e.name.endswith(".json") and e.name not in _SPECIAL and valid_job_id(e.name[:-5])
        }


@dataclass(frozen=True)
class _Index:
    """jobs/index.json: one JobSummary row per job id, and the version of the rows' layout."""

    version: int
    jobs: dict[str, list]


def _read_index(base: Path) -> dict[str, JobSummary] | None:
    """The index as stored, or None when it is missing, unreadable or of another version."""
    try:
        stored = records.parse_dataclass(_Index, read_json(jobs_dir(base) / INDEX_FILE), INDEX_FILE)
        if stored.version != INDEX_VERSION:
            return None
        return {k: JobSummary.from_row(v) for k, v in stored.jobs.items()}
    except ValueError:  # unreadable, or a RecordError
        return None


def _write_index(base: Path, rows: dict[str, JobSummary]) -> None:
    data = records.to_json(_Index(INDEX_VERSION, {k: v.to_row() for k, v in rows.items()}))
    atomic_write_bytes(jobs_dir(base) / INDEX_FILE, json.dumps(data, separators=(",", ":")).encode())


def _parse(base: Path, job_id: str) -> JobRecord | None:
    """The record of job_id, or None: its file is gone or cannot be opened now (it is left alone), or its
    content is not a valid record (it is quarantined: set aside with why, so it breaks no page)."""
    path = _path(base, job_id)
    try:
        text = path.read_bytes()
    except OSError:
        return None
    try:
        return JobRecord.from_json(json.loads(text))
    except ValueError as err:  # bad JSON, bad UTF-8, a missing or wrong-typed field (RecordError)
        quarantine(base, job_id, str(err))
        return None


def index(base: Path) -> dict[str, JobSummary]:
    """Every job's summary by id, from the index; rebuilt (under the lock) where it disagrees with the files."""
    rows, stored = _read_index(base), _stored_ids(base)
    if rows is not None and set(rows) == stored:
        return rows
    if rows is None and not stored:
        return {}  # nothing was ever queued here: no index to write (a tab that only looked leaves no file)
    with locked(base):
        rows = _read_index(base) or {}
        stored = _stored_ids(base)
        if set(rows) != stored:
            rows = {k: v for k, v in rows.items() if k in stored}
            for job_id in sorted(stored - set(rows)):
                try:
                    rows[job_id] = _summary_of(json.loads(_path(base, job_id).read_bytes()))
                except OSError:
                    continue  # gone (or unreadable now): not listed
                except ValueError as err:  # broken JSON, wrong-typed status, times…: set aside
                    quarantine(base, job_id, str(err))
            _write_index(base, rows)
            if sum(1 for v in rows.values() if not v.active) > KEEP_ENDED:  # a store never pruned: cut it now
                prune_jobs(base)
                rows = _read_index(base) or rows
        return rows


def _set_row(base: Path, job_id: str, row: JobSummary | None) -> None:
    """Put (or with None, remove) one row of the index, under the lock."""
    with locked(base):
        rows = _read_index(base)
        if rows is None:
            index(base)  # rebuilt from the files, this record included
            return
        if rows.get(job_id) == row:
            return
        if row is None:
            rows.pop(job_id, None)
        else:
            rows[job_id] = row
        _write_index(base, rows)


def save_job(base: Path, record: JobRecord) -> None:
    """Write a record (atomically) and its index row; a new job or a new status (not mere progress) bumps the
    class's live stamp, so every open tab redraws its queue."""
    with locked(base):
        before = (_read_index(base) or {}).get(record.job_id)
        atomic_write_json(_path(base, record.job_id), record.to_json())
        _set_row(base, record.job_id, record.summary())
    if before is None or before.status != record.status:
        live.bump(base, live.Channel.CLASS)


def delete_job(base: Path, job_id: str) -> None:
    """Remove a record and its index row (an enqueue that failed); open tabs redraw their queue."""
    with locked(base):
        _path(base, job_id).unlink(missing_ok=True)
        _set_row(base, job_id, None)
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
        for key in changes:
            if not hasattr(record, key):
                raise JobError(f"A job has no field {key!r}.")
        record = replace(record, **changes)  # checked again as a new record is (__post_init__)
        save_job(base, record)
        return record


def list_jobs(
    base: Path,
    reconcile_dead: bool = True,
    ended: int | None = None,
    kind: JobKind | None = None,
    key: str | None = None,
) -> list[JobRecord]:
    """The readable jobs, oldest first: every active one and the `ended` most recently ended (all when None),
    of one kind and key when given. Running jobs whose worker died are marked failed first.

    Only the records chosen through the index are opened, so a read costs the same at 10,000 stored jobs.
    """
    rows = {k: v for k, v in index(base).items() if (kind is None or v.kind == kind) and (key is None or v.key == key)}
    chosen = [k for k, v in rows.items() if v.active]
    done = sorted((k for k, v in rows.items() if not v.active), key=lambda k: rows[k].finished or rows[k].created)
    chosen += done if ended is None else done[len(done) - ended :] if ended > 0 else []
    found = []
    for job_id in chosen:
        record = _parse(base, job_id)
        if record is None:
            continue
        if record.summary() != rows[job_id]:  # the index lagged behind a write (a crash between the two)
            _set_row(base, job_id, record.summary())
        found.append(record)
    if reconcile_dead and any(j.status == JobStatus.RUNNING for j in found) and reconcile(base, records=found):
        return list_jobs(base, False, ended, kind, key)
    return sorted(found, key=lambda r: r.created)


def read_all(base: Path) -> list[JobRecord]:
    """Every readable job (no reconciling): the whole store, for tools and tests."""
    return list_jobs(base, reconcile_dead=False)


def prune_jobs(base: Path, keep: int | None = None, days: float | None = None, now: float | None = None) -> list[str]:
    """Delete ended jobs older than `days` and all but the `keep` most recently ended; returns their ids.

    Active jobs are never pruned. Called by the worker every hour and whenever a submit finds the store
    over `keep`, so the store stays bounded even with no worker running.
    """
    now = time.time() if now is None else now
    keep = KEEP_ENDED if keep is None else keep
    days = KEEP_DAYS if days is None else days
    with locked(base):
        rows = index(base)
        ended = sorted((k for k, v in rows.items() if not v.active), key=lambda k: rows[k].finished or rows[k].created)
        old = {k for k in ended if (rows[k].finished or rows[k].created) < now - days * 86400}
        gone = sorted(old | set(ended[: max(0, len(ended) - keep)]))
        for job_id in gone:
            _path(base, job_id).unlink(missing_ok=True)
            rows.pop(job_id, None)
        if gone:
            _write_index(base, rows)
    return gone


# ---- unreadable records -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Quarantined:
    """A job record that could not be read, set aside in jobs/quarantine/ with why (the Class page lists them)."""

    job_id: str
    reason: str
    when: float


@dataclass(frozen=True)
class _Why:
    """jobs/quarantine/<id>.why.json: why a record was set aside, and when."""

    reason: str
    when: float


def quarantine_dir(base: Path) -> Path:
    return jobs_dir(base) / QUARANTINE_DIR


def quarantine(base: Path, job_id: str, reason: str) -> None:
    """Move an unreadable record out of the store (it never runs, lists or breaks a page) and note why."""
    folder = quarantine_dir(base)
    folder.mkdir(exist_ok=True)
    with locked(base):
        try:
            os.replace(_path(base, job_id), folder / f"{job_id}.json")
        except FileNotFoundError:
            return  # another reader set it aside first
        atomic_write_json(folder / f"{job_id}.why.json", records.to_json(_Why(reason[:500], time.time())))
        rows = _read_index(base)
        if rows is not None and job_id in rows:
            rows.pop(job_id)
            _write_index(base, rows)
        kept = sorted(folder.glob("*.why.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[MAX_QUARANTINED:]:
            (folder / old.name.replace(".why.json", ".json")).unlink(missing_ok=True)
            old.unlink(missing_ok=True)


def quarantined(base: Path) -> list[Quarantined]:
    """The records set aside as unreadable, newest first."""
    folder = quarantine_dir(base)
    found = []
    for why in folder.glob("*.why.json") if folder.is_dir() else []:
        job_id = why.name[: -len(".why.json")]
        try:
            note = records.parse_dataclass(_Why, read_json(why), why.name)
            found.append(Quarantined(job_id, note.reason, note.when))
        except ValueError:  # unreadable, or a RecordError
            found.append(Quarantined(job_id, "?", why.stat().st_mtime))
    return sorted(found, key=lambda q: q.when, reverse=True)


def clear_quarantine(base: Path) -> int:
    """Delete the set-aside records (the teacher's action; core.teach.jobs checks who asks); returns how many."""
    folder = quarantine_dir(base)
    found = quarantined(base)
    shutil.rmtree(folder, ignore_errors=True)
    return len(found)


def find_job(
    found: list[JobRecord], kind: JobKind, key: str, statuses: tuple[JobStatus, ...] = ACTIVE
) -> JobRecord | None:
    """The newest job of this kind and key among found with one of statuses (a request joins an active one)."""
    matching = [j for j in found if j.kind == kind and j.key == key and j.status in statuses]
    return max(matching, key=lambda j: j.created) if matching else None


def run_order(rows: dict[str, JobSummary]) -> list[str]:
    """The active jobs in the order the worker runs them: the running ones, then the teacher's queued jobs
    oldest first, then the students' in turns: one job per student (per computer, core.auth.client_key)
    per round, the student served longest ago first. A student with many requests waits their turn
    behind each other student once, whatever they queued first (issue 18: first in, first out let one
    student's 30 tabs put 18 jobs ahead of the teacher's Train)."""
    active = {k: v for k, v in rows.items() if v.active}
    order = sorted((k for k, v in active.items() if v.status == JobStatus.RUNNING), key=lambda k: active[k].created)
    queued = sorted((k for k, v in active.items() if v.status == JobStatus.QUEUED), key=lambda k: active[k].created)
    order += [k for k in queued if active[k].by_teacher]
    waiting: dict[str, list[str]] = {}
    for k in queued:
        if not active[k].by_teacher:
            waiting.setdefault(active[k].client, []).append(k)
    served: dict[str, float] = {}  # when each student's last job started (their last turn)
    for row in rows.values():
        if not row.by_teacher and row.started is not None:
            served[row.client] = max(served.get(row.client, 0.0), row.started)
    turn = max(served.values(), default=0.0)
    while waiting:
        client = min(waiting, key=lambda c: (served.get(c, 0.0), active[waiting[c][0]].created))
        order.append(waiting[client].pop(0))
        turn += 1.0
        served[client] = turn  # to the back of the round
        if not waiting[client]:
            del waiting[client]
    return order


def next_in_line(rows: dict[str, JobSummary]) -> str | None:
    """The queued job the worker runs next (run_order), or None."""
    return next((k for k in run_order(rows) if rows[k].status == JobStatus.QUEUED), None)


def jobs_ahead(rows: dict[str, JobSummary], job_id: str) -> int:
    """How many jobs the worker runs before this queued one (the running one included); 0 unless queued."""
    order = run_order(rows)
    return order.index(job_id) if job_id in order and rows[job_id].status == JobStatus.QUEUED else 0


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
    for record in list_jobs(base, reconcile_dead=False, ended=0) if records is None else records:
        if record.status != JobStatus.RUNNING:
            continue
        gone = not process_alive(record.pid) if record.host == host else now - (record.updated or 0) > STALE_SECONDS
        if gone:
            with locked(base):
                current = load_job(base, record.job_id)
                if current.status == JobStatus.RUNNING and current.pid == record.pid:
                    current.status, current.finished = JobStatus.FAILED, now
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
        for record in list_jobs(base, reconcile_dead=False, ended=0):
            if record.status == JobStatus.RUNNING and record.pid == pid and record.host == socket.gethostname():
                record.status, record.finished, record.error = JobStatus.FAILED, time.time(), reason
                save_job(base, record)
                failed.append(record.job_id)
                clean_job_leftovers(base, record)
    return failed


def clean_job_leftovers(base: Path, record: JobRecord) -> list[str]:
    """Remove the hidden temp files a killed job was writing its cache into (never a finished cache).

    Caches are written to a temp name and renamed into place, so a killed job leaves no half cache,
    only its temp: `.tmp-<feature key>-*` in features/, `.<index key>.npz.*.tmp` in patch_index/.
    """
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

    core.store.repair.repair_runs first rolls an interrupted retrain swap forward or back, so a `.old-*` folder
    that holds the only complete copy of a run is restored, not removed.
    """
    done = repair.repair_runs(runs_dir, max_age=0)
    try:
        with training_lock.training_lock(runs_dir):
            training_lock.clear_stop(runs_dir)
    except (training_lock.TrainingBusy, OSError):
        pass
    return done
