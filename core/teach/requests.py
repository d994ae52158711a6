"""Training requests: a student asks the teacher to train a run; the teacher approves (it is queued) or declines.

Students cannot queue trainings themselves (core.auth: "train" is the teacher's). Rather than a dead end,
the Training page lets a student ask for exactly the run they set up; the teacher sees each request with
its numbers on the Class page and approves it with one click. Why not a per-student allowance of small
jobs that run by themselves: the worker trains one job at a time for the whole room, so thirty automatic
jobs would push the lesson's own runs back by many minutes at the moment the teacher needs them, and
the teacher would learn of it only from the queue. A request costs the teacher one click, and that
click is when they look at the student's classes.

One request per student (a new one replaces a pending one), in the student's space as
`students/<tab>/request.json`, parsed in one place (`TrainingRequest.from_json`). A request for the
student's own classes carries a copy of them made when asking (`students/<tab>/requested/`): the worker
trains exactly the photos the teacher approved, even if the student goes on adding photos. A dataset too
small to train is refused with its numbers when asking and again when approving, before anything is queued.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.auth import Forbidden, Identity, require
from core.data.datasets import DatasetError, DatasetScan, DatasetSpec, scan_dataset, training_refusal
from core.i18n import _
from core.settings import students_dir
from core.storage import atomic_write_json, read_json
from core.store import live, records
from core.store.records import RunConfig
from core.teach.classroom import student_classes_root, student_space
from core.teach.own_classes import OwnClassesStore

REQUEST_FILE = "request.json"
SNAPSHOT_DIR = "requested"


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"  # queued: job_id names the job
    DECLINED = "declined"


@dataclass(frozen=True)
class TrainingRequest:
    """What a student asked to have trained, with the dataset's numbers when they asked."""

    tab: str
    config: RunConfig
    dataset: DatasetSpec
    created: float
    n_images: int
    n_valid: int
    classes: dict[str, int]  # class -> images
    status: RequestStatus = RequestStatus.PENDING
    decided: float = 0.0
    job_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return records.to_json(self)

    @classmethod
    def from_json(cls, data: Any) -> TrainingRequest:
        """Parse a stored request through the one parser; ValueError (a RecordError) naming what is wrong."""
        return records.parse_dataclass(cls, data, REQUEST_FILE)


def request_path(base: Path, tab: str) -> Path:
    return student_space(base, tab) / REQUEST_FILE


def request_of(base: Path, tab: str) -> TrainingRequest | None:
    """The tab's latest request, or None (none, or unreadable)."""
    try:
        path = request_path(base, tab)
        return TrainingRequest.from_json(read_json(path)) if path.is_file() else None
    except ValueError:
        return None


def all_requests(base: Path) -> list[TrainingRequest]:
    """Every student's latest request, oldest first (the Class page lists the pending ones)."""
    folder = students_dir(base)
    found = [request_of(base, p.name) for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
    return sorted((r for r in found if r is not None), key=lambda r: r.created)


KEEP_SNAPSHOTS = 3  # a student's runs keep their training images (the "not sure" check reads them)


def _snapshot(base: Path, tab: str, spec: DatasetSpec, fingerprint: str) -> DatasetSpec:
    """A student's own classes copied as they are now (what the teacher approves is what gets trained)."""
    folder = student_space(base, tab) / SNAPSHOT_DIR
    dest = folder / fingerprint[:16]
    if not dest.is_dir():
        OwnClassesStore(Path(spec.root), read_only=True).publish(dest)
    else:
        dest.touch()
    older = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                   key=lambda p: p.stat().st_mtime, reverse=True)  # fmt: skip
    for old in older[KEEP_SNAPSHOTS:]:
        shutil.rmtree(old, ignore_errors=True)
    return replace(spec, root=str(dest))


def _refuse_if_too_small(scan: DatasetScan) -> None:
    refused = training_refusal(scan)
    if refused is not None:
        raise DatasetError(refused.message)


def ask(
    base: Path,
    identity: Identity,
    config: RunConfig,
    scan: DatasetScan,
    scan_fn: Callable[[DatasetSpec], DatasetScan] | None = None,
    job_active: Callable[[str], bool] = lambda job_id: False,
) -> TrainingRequest:
    """A student asks for config to be trained on scan's dataset. Refused (DatasetError) when it is too small
    to train, with its numbers; refused (JobError-like ValueError) while their earlier approved job is active.

    scan_fn scans the copy of own classes (the page's cached scan); job_active says whether a job still waits or runs.
    """
    if identity.is_teacher:
        raise Forbidden(_("The teacher queues trainings directly; requests are for students."))
    records.validate(config)
    _refuse_if_too_small(scan)
    earlier = request_of(base, identity.tab)
    if earlier is not None and earlier.status == RequestStatus.APPROVED and job_active(earlier.job_id):
        raise ValueError(_("Your earlier request is queued or training: wait until it is done, then ask again."))
    spec = scan.spec
    if spec.kind == "own" and Path(spec.root) == student_classes_root(base, identity.tab):
        spec = _snapshot(base, identity.tab, spec, scan.fingerprint)
        scan = (scan_fn or scan_dataset)(spec)
        _refuse_if_too_small(scan)
    n_valid = int(scan.items["is_valid"].sum())
    counts = scan.items["label"].value_counts()
    request = TrainingRequest(
        tab=identity.tab,
        config=replace(config, dataset=scan.fingerprint),
        dataset=spec,
        created=time.time(),
        n_images=scan.n_images,
        n_valid=n_valid,
        classes={str(c): int(counts[c]) for c in sorted(counts.index)},
    )
    atomic_write_json(request_path(base, identity.tab), request.to_json())
    live.bump(base, live.Channel.ROSTER)
    return request


def _decide(base: Path, request: TrainingRequest, **changes: Any) -> TrainingRequest:
    decided = replace(request, decided=time.time(), **changes)
    atomic_write_json(request_path(base, request.tab), decided.to_json())
    live.bump(base, live.Channel.ROSTER, live.Channel.CLASS)  # the student's page shows the answer
    return decided


def _pending(base: Path, tab: str) -> TrainingRequest:
    request = request_of(base, tab)
    if request is None or request.status != RequestStatus.PENDING:
        raise ValueError(_("This request was withdrawn or already answered."))
    return request


def approve(
    base: Path,
    identity: Identity,
    tab: str,
    queue: Callable[[RunConfig, DatasetSpec], str],
    scan_fn: Callable[[DatasetSpec], DatasetScan] | None = None,
) -> TrainingRequest:
    """Teacher: queue the requested training (queue(config, spec) -> job id) and mark the request approved.

    The dataset is scanned again first: one that became too small (photos removed) is refused, with its numbers.
    """
    require(identity, "train")
    request = _pending(base, tab)
    scan = (scan_fn or scan_dataset)(request.dataset)
    _refuse_if_too_small(scan)
    config = replace(request.config, dataset=scan.fingerprint)
    job_id = queue(config, request.dataset)
    return _decide(base, request, status=RequestStatus.APPROVED, job_id=job_id, config=config)


def decline(base: Path, identity: Identity, tab: str) -> TrainingRequest:
    """Teacher: say no to a request (the student sees it and may ask again)."""
    require(identity, "train")
    return _decide(base, _pending(base, tab), status=RequestStatus.DECLINED)


def withdraw(base: Path, identity: Identity) -> None:
    """A student takes back their pending request."""
    request = request_of(base, identity.tab)
    if request is not None and request.status == RequestStatus.PENDING:
        request_path(base, identity.tab).unlink(missing_ok=True)
        live.bump(base, live.Channel.ROSTER)
