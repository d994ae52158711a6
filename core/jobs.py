"""Training as background jobs: queued by the teacher, run one at a time by a worker process.

The queue is huey's: by default SqliteHuey in `<data>/jobs/queue.db` (no service to install); with
$PETLAB_QUEUE=redis://host:port/db, RedisHuey, so workers can run on other machines that mount the
same data folder (see README, "Class mode"). The broker carries only job ids; what a job is and how
it goes is its JobRecord (core.job_records).

The worker (core.worker) runs each job through core.training.train_run, which stores a run only
when it is complete.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core import lesson, records, training_lock
from core.auth import Forbidden, Identity, require
from core.datasets import DatasetSpec
from core.i18n import N_, _
from core.job_records import (
    STATUS_NAMES,
    JobError,
    JobEvent,
    JobRecord,
    find_job,
    jobs_dir,
    load_job,
    locked,
    read_all,
    save_job,
    update_job,
)
from core.patches import PatchIndexRequest
from core.records import RunConfig
from core.settings import features_dir, runs_dir

QUEUE_ENV = "PETLAB_QUEUE"  # unset: SQLite in the data folder; redis://host:port/db: a Redis broker
QUEUE_FILE = "queue.db"
TASK_NAME = "petlab.run_job"
STUDENT_PATCH_IMAGES = 1000  # a student's patch index covers at most this many images (about a minute on a CPU)
# reasons the worker stores in a job record (in English: it has no language); translated where shown
STOPPED_BY_TEACHER = N_("Stopped by the teacher: nothing was saved.")
STOPPED = N_("Stopped.")
STUDENT_ACTIVE_JOBS = 1  # jobs a student's tab may have waiting or running at once (joining one does not count)


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
    with locked(base):
        save_job(base, record)
    (queue or make_queue(base)).run_job(job_id)
    return load_job(base, job_id)


def _new_id() -> str:
    return f"{time.strftime('%Y%m%d%H%M%S')}{uuid.uuid4().hex[:6]}"


def _enqueue(base: Path, identity: Identity, record: JobRecord, queue: Queue | None) -> tuple[JobRecord, bool]:
    """Queue a shared-cache job once per (kind, key): a second request joins the active one. Returns (job, joined)."""
    base = Path(base)
    with locked(base):
        found = read_all(base)
        active = find_job(found, record.kind, record.key)
        if active is not None:
            return active, True
        if not identity.is_teacher:
            mine = [j for j in found if j.active and j.queued_by == f"{identity.role}:{identity.tab}"]
            if len(mine) >= STUDENT_ACTIVE_JOBS:
                raise JobError(_("Your earlier request is still waiting or running: one at a time, please."))
        save_job(base, record)
    (queue or make_queue(base)).run_job(record.job_id)
    return load_job(base, record.job_id), False


def _record(identity: Identity, kind: str, key: str, title: str, config, dataset: DatasetSpec, **more) -> JobRecord:
    return JobRecord(
        job_id=_new_id(),
        title=title,
        config=config,
        dataset=dataset,
        queued_by=f"{identity.role}:{identity.tab}",
        created=time.time(),
        kind=kind,
        key=key,
        **more,
    )


def submit_lr_find(
    base: Path, identity: Identity, config: RunConfig, dataset: DatasetSpec, queue: Queue | None = None
) -> tuple[JobRecord, bool]:
    """Queue the LR finder for config's last stage (the teacher; a student only on cached features).

    Its result lands in the job record: every tab asking for the same curve finds it there.
    """
    from core import lr_finder

    records.validate(config)
    lr_finder.require_allowed(identity, config, features_dir(base))
    title = _("LR finder · {title}").format(title=config.title())
    return _enqueue(
        base, identity, _record(identity, "lr_find", lr_finder.lr_finder_key(config), title, config, dataset), queue
    )


def submit_extract(
    base: Path, identity: Identity, config: RunConfig, dataset: DatasetSpec, queue: Queue | None = None
) -> tuple[JobRecord, bool]:
    """Teacher: queue the extraction of the body features config's fast first stage trains on."""
    from core.features import feature_spec

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
    return _enqueue(base, identity, _record(identity, "extract", key, title, one, dataset), queue)


def submit_patch_index(
    base: Path, identity: Identity, request: PatchIndexRequest, dataset: DatasetSpec, queue: Queue | None = None
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
    record = _record(identity, "patch_index", request.key, title, None, dataset, patch=request)
    return _enqueue(base, identity, record, queue)


def lesson_plan(
    fingerprint: str,
    arch: str = lesson.WORKSHOP.arch,
    img_size: int = lesson.WORKSHOP.img_size,
    epochs1: int = lesson.WORKSHOP.epochs1,
    epochs2: int = lesson.WORKSHOP.epochs2,
) -> list[tuple[str, RunConfig]]:
    """The lesson's runs in order (core.lesson.plan) with the Training page's defaults, so students find them
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
        if record.status == "queued":
            record.status, record.finished = "cancelled", time.time()
        elif record.status == "running":
            record.stop_requested = True  # the job's next progress event ends it
            if record.kind == "train":
                training_lock.request_stop(runs_dir(base))
        else:
            raise JobError(
                _("Job {job_id} is already {status}.").format(job_id=job_id, status=_(STATUS_NAMES[record.status]))
            )
        save_job(base, record)
        return record


# ---- running a job (in the worker) ----------------------------------------------------------------


def execute(base: Path, job_id: str, scan_fn: Callable | None = None) -> JobRecord:
    """Run one queued job to its end: done, stopped, failed (with the reason) or skipped if cancelled."""
    from core import datasets, models

    base = Path(base)
    with locked(base):
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
                raise training_lock.TrainingStopped(STOPPED_BY_TEACHER)

    outcome: dict[str, Any] = {}
    try:
        outcome = _run(base, record, on_event, scan_fn or datasets.scan_dataset)
    except training_lock.TrainingStopped as err:
        outcome = {"status": "stopped", "error": str(err).split("\n")[-1] or STOPPED}
    except (records.ConfigError, models.WeightsUnavailable, datasets.DatasetError) as err:
        outcome = {"status": "failed", "error": str(err)}
    except Exception as err:  # the worker keeps serving the queue; the page shows why this job failed
        outcome = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
    return update_job(base, job_id, finished=time.time(), updated=time.time(), epochs=epochs, **outcome)


def _run(base: Path, record: JobRecord, on_event: Callable[[dict], None], scan_fn: Callable) -> dict[str, Any]:
    """Do the job's work by its kind; returns the fields of a done record."""
    from core import learners, lr_finder, patches, training

    if record.kind == "patch_index":
        patch = record.patch
        patches.build_requested_index(
            patch, base, runs_dir(base), lambda i, n: on_event({"kind": "index", "i": i, "n": n})
        )
        return {"status": "done"}
    scan = scan_fn(record.dataset)
    if record.kind == "lr_find":
        found = lr_finder.find_lr(record.config, scan, runs_dir(base), features_dir(base), on_event=on_event, wait=True)
        return {"status": "done", "result": found}
    if record.kind == "extract":
        learners.extract_features(record.config, scan, features_dir(base), on_event=on_event)
        return {"status": "done"}
    result = training.train_run(
        record.config,
        scan,
        runs_dir(base),
        features_dir(base),
        on_event=on_event,
        lr_finder=record.lr_finder,
        retrain=record.retrain,
        wait=True,
    )
    return {"status": "done", "run_id": result.run.run_id, "reused": result.reused}
