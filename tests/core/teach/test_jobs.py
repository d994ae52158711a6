"""Jobs: typed records of every kind, the queue and who may use it, dedupe, stop/cancel, a worker that can be killed."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

import pytest

from core.auth import LAPTOP_USER, STUDENT, TEACHER, Forbidden, Identity
from core.data.datasets import scan_dataset
from core.data.pets import pets_spec
from core.store import runs
from core.store.records import ConfigError, EpochRow, EventKind, RunConfig, StageConfig, TrainEvent
from core.teach import job_records, jobs, worker

ROOT = Path(__file__).resolve().parents[3]
TEACH = Identity(TEACHER, "c" * 24)
ALICE = Identity(STUDENT, "a" * 24)


def tiny(scan, epochs=1, fast=True, stages=None) -> RunConfig:
    stage1 = StageConfig(epochs=epochs, lr_max=3e-3, fast=fast)
    return RunConfig(dataset=scan.fingerprint, img_size=32, bs=16, stages=stages or (stage1,))


def drain(queue) -> int:
    """Run every queued task in this process (what the worker's consumer does), in order."""
    done = 0
    while (task := queue.huey.dequeue()) is not None:
        queue.huey.execute(task)
        done += 1
    return done


def wait_for(predicate, timeout=240.0, every=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


@pytest.fixture
def scan(pets_like):
    return scan_dataset(pets_spec(pets_like))


def test_records_and_events_are_typed(scan, data_folder):
    event = TrainEvent.from_json({"kind": "batch", "stage": 0, "epoch": 1, "n_epoch": 2, "iter": 3, "n_iter": 6,
                                  "loss": 0.5, "lr": 1e-3, "extra": 1})  # fmt: skip
    assert event.kind is EventKind.BATCH and event.fraction == pytest.approx(0.75)
    assert job_records.event_text(event) == "stage 1 · epoch 2/2 · batch 3/6 · loss 0.500 · lr 1e-03"
    with pytest.raises(ValueError, match="lacks kind"):
        TrainEvent.from_json({"loss": 1.0})
    with pytest.raises(ValueError, match="kind should be one of"):
        TrainEvent.from_json({"kind": "party"})
    row = EpochRow(0, 0, 1.0, 0.9, 0.25, 2.0, metrics={"accuracy": 0.75})
    record = job_records.JobRecord("j1", "t", tiny(scan), scan.spec, last=event, epochs=[row])
    stored = json.loads(json.dumps(record.to_json()))
    assert stored["status"] == "queued" and stored["kind"] == "train" and stored["epochs"][0]["accuracy"] == 0.75
    again = job_records.JobRecord.from_json(stored)
    assert again == record and isinstance(again.config, RunConfig) and isinstance(again.last, TrainEvent)
    assert again.status is job_records.JobStatus.QUEUED and again.kind is job_records.JobKind.TRAIN
    assert again.epochs == [row] and again.to_json() == stored
    for bad in ([], {"job_id": "x"}, {**record.to_json(), "status": "exploded"}):
        with pytest.raises(ValueError):
            job_records.JobRecord.from_json(bad)
    (job_records.jobs_dir(data_folder) / "broken.json").write_text("{")
    assert job_records.list_jobs(data_folder) == []  # a broken record is skipped
    with pytest.raises(job_records.JobError):
        job_records.load_job(data_folder, "../../etc")


def test_a_student_cannot_queue_or_stop(scan, data_folder):
    queue = jobs.make_queue(data_folder)
    with pytest.raises(Forbidden):
        jobs.submit(data_folder, ALICE, tiny(scan), scan.spec, queue=queue)
    assert job_records.list_jobs(data_folder) == [] and queue.huey.pending_count() == 0
    record = jobs.submit(data_folder, TEACH, tiny(scan), scan.spec, queue=queue)
    with pytest.raises(Forbidden):
        jobs.stop_job(data_folder, ALICE, record.job_id)
    assert job_records.load_job(data_folder, record.job_id).status == "queued"
    with pytest.raises(job_records.JobError):
        jobs.make_queue(data_folder, "amqp://nope")


def test_teacher_queues_the_lesson_and_cancels_one(scan, data_folder):
    queue = jobs.make_queue(data_folder)
    stage1 = StageConfig(epochs=1, lr_max=3e-3, fast=True)
    first = jobs.submit(data_folder, TEACH, tiny(scan), scan.spec, queue=queue)
    stage2 = tiny(scan, stages=(stage1, StageConfig(epochs=1, lr_max=1e-4, lr_min=1e-6, unfreeze=True)))
    second = jobs.submit(data_folder, TEACH, stage2, scan.spec, queue=queue)
    third = jobs.submit(data_folder, LAPTOP_USER, tiny(scan, epochs=2), scan.spec, queue=queue)
    assert [j.status for j in job_records.list_jobs(data_folder)] == ["queued"] * 3
    jobs.stop_job(data_folder, TEACH, third.job_id)
    assert drain(queue) == 3
    done = {j.job_id: j for j in job_records.list_jobs(data_folder)}
    assert [done[j.job_id].status for j in (first, second, third)] == ["done", "done", "cancelled"]
    assert done[second.job_id].run_id == stage2.run_id
    assert runs.find_run(data_folder / "runs", stage2) is not None
    assert done[first.job_id].epochs and done[first.job_id].last is not None
    with pytest.raises(job_records.JobError, match="already done"):
        jobs.stop_job(data_folder, TEACH, first.job_id)


def test_a_failing_job_says_why(scan, data_folder):
    queue = jobs.make_queue(data_folder)
    wrong = RunConfig(dataset="not-this-dataset", img_size=32, stages=(StageConfig(1, 3e-3, fast=True),))
    record = jobs.submit(data_folder, TEACH, wrong, scan.spec, queue=queue)
    drain(queue)
    failed = job_records.load_job(data_folder, record.job_id)
    assert failed.status == "failed" and "fingerprint" in failed.error


def test_stop_a_running_job_saves_nothing(scan, data_folder):
    queue = jobs.make_queue(data_folder)
    config = tiny(scan, epochs=200, fast=False)
    record = jobs.submit(data_folder, TEACH, config, scan.spec, queue=queue)
    drainer = threading.Thread(target=drain, args=(queue,))
    drainer.start()
    wait_for(lambda: job_records.load_job(data_folder, record.job_id).last is not None)
    jobs.stop_job(data_folder, TEACH, record.job_id)
    drainer.join(timeout=120)
    stopped = job_records.load_job(data_folder, record.job_id)
    assert stopped.status == "stopped" and "nothing was saved" in stopped.error
    assert runs.find_run(data_folder / "runs", config) is None


def start_worker(base: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PETLAB_DATA=str(base))
    return subprocess.Popen([sys.executable, "-m", "core.teach.worker", "--data", str(base), *extra], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def test_worker_process_trains_and_a_killed_worker_leaves_no_half_run(scan, data_folder):
    long = tiny(scan, epochs=200, fast=False)
    record = jobs.submit(data_folder, TEACH, long, scan.spec)  # queued with no worker, no tab, nothing
    proc = start_worker(data_folder)
    try:
        info = wait_for(lambda: worker.worker_info(data_folder))
        assert info.threads == max(1, os.cpu_count() - 1) and info.nice >= 10 and info.queue == "sqlite"
        assert worker.worker_running(data_folder) and worker.ensure_worker(data_folder) is None  # one worker only
        wait_for(lambda: job_records.load_job(data_folder, record.job_id).last is not None)
        assert any(p.name.startswith(".work-") for p in (data_folder / "runs").iterdir())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    failed = job_records.list_jobs(data_folder)[0]  # listing notices the dead worker
    assert failed.status == "failed" and "killed or crashed" in failed.error
    assert runs.list_runs(data_folder / "runs") == ([], [])
    assert not [p for p in (data_folder / "runs").iterdir() if p.is_dir()]  # no half-written folder left
    assert not worker.worker_running(data_folder)

    quick = jobs.submit(data_folder, TEACH, tiny(scan), scan.spec)
    pid = worker.ensure_worker(data_folder)  # what the app does when no worker runs
    assert pid
    try:
        done = wait_for(
            lambda: (j := job_records.load_job(data_folder, quick.job_id)).status in ("done", "failed") and j
        )
        assert done.status == "done", done.error
        assert runs.find_run(data_folder / "runs", tiny(scan)) is not None
    finally:
        assert worker.stop_worker(data_folder)


@pytest.fixture
def redis_url(tmp_path):
    """A private redis-server on 127.0.0.1 and a random port, stopped after the test."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (`make system-deps` installs Debian's)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port)
        wait_for(lambda: _ping(client), timeout=20)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _ping(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


def test_redis_broker_and_worker(scan, data_folder, redis_url):
    queue = jobs.make_queue(data_folder, redis_url)
    assert queue.kind == "redis"
    record = jobs.submit(data_folder, TEACH, tiny(scan), scan.spec, queue=queue)
    assert queue.huey.pending_count() == 1  # the job id waits in Redis, not in SQLite
    assert not (data_folder / "jobs" / jobs.QUEUE_FILE).exists()
    proc = start_worker(data_folder, "--queue", redis_url)
    try:
        done = wait_for(
            lambda: (j := job_records.load_job(data_folder, record.job_id)).status in ("done", "failed") and j
        )
        assert done.status == "done", done.error
        assert worker.worker_info(data_folder).queue == "redis"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_an_idle_worker_started_by_the_app_exits(data_folder):
    proc = start_worker(data_folder, "--idle-exit", "1")
    try:
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not worker.worker_running(data_folder) and worker.worker_info(data_folder) is None


# ---- job kinds beyond training: LR finder, body features, patch index ------------------------------


def patch_request(scan, n=12, stage="0.0.3"):
    from core.inside import patches

    paths = tuple(patches.sample_paths(scan.items["path"].astype(str).tolist(), n))
    return patches.PatchIndexRequest(
        model_kind="imagenet", arch="mobilenet_v2", model_id="imagenet-mobilenet_v2",
        fingerprint=f"{scan.fingerprint}-n{n}", stage=stage, size=32, paths=paths,
    )  # fmt: skip


def test_every_job_kind_is_a_typed_record(scan, data_folder):
    from core.train.lr_finder import LRFinderResult

    result = LRFinderResult([1e-5, 1e-3], [2.0, 1.5], {"valley": 1e-4}, {"valley": (1e-4, 1.7)})
    for record in (
        job_records.JobRecord("j2", "t", tiny(scan), scan.spec, kind="lr_find", key="k", result=result),
        job_records.JobRecord("j3", "t", None, scan.spec, kind="patch_index", key="k", patch=patch_request(scan)),
    ):
        again = job_records.JobRecord.from_json(record.to_json())
        assert again == record
    with pytest.raises(ValueError, match="kind should be one of"):
        job_records.JobRecord.from_json({**record.to_json(), "kind": "mine_bitcoin"})
    with pytest.raises(ValueError, match="lacks what it works on"):  # a patch index with no request
        job_records.JobRecord.from_json({**record.to_json(), "patch": None})
    with pytest.raises(ValueError, match="names no loadable model"):
        job_records.JobRecord.from_json({**record.to_json(), "patch": {**record.to_json()["patch"], "run_id": "r"}})


def test_a_patch_index_job_names_its_stage_as_the_pages_do(scan):
    """Issue 19: the queue said "patch index · 0.0.3" (the module path), not the stage a student picked."""
    from core import i18n

    record = job_records.JobRecord("j", "t", None, scan.spec, kind="patch_index", key="k", patch=patch_request(scan))
    assert record.shown_title() == "patch index · features.3 · 12 images"
    stem = replace(record, patch=patch_request(scan, stage="0.0.0"))
    try:
        i18n.set_language("zh")
        assert record.shown_title() == "图块索引 · features.3 · 12 张图片"
        assert stem.shown_title() == "图块索引 · 起始层（features.0） · 12 张图片"
    finally:
        i18n.set_language("en")


def test_shared_cache_jobs_are_queued_once_per_key_and_a_second_request_joins(scan, data_folder):
    queue = jobs.make_queue(data_folder)
    config = tiny(scan)
    first, joined = jobs.submit_lr_find(data_folder, TEACH, config, scan.spec, queue=queue)
    assert not joined and first.kind == "lr_find" and first.status == "queued"
    other_lr = replace(config, stages=(replace(config.stages[0], lr_max=1e-2, epochs=3),))  # same curve
    again, joined = jobs.submit_lr_find(data_folder, LAPTOP_USER, other_lr, scan.spec, queue=queue)
    assert joined and again.job_id == first.job_id
    features, joined = jobs.submit_extract(data_folder, TEACH, config, scan.spec, queue=queue)
    assert not joined and jobs.submit_extract(data_folder, TEACH, config, scan.spec, queue=queue)[0] == features
    index, joined = jobs.submit_patch_index(data_folder, ALICE, patch_request(scan), scan.spec, queue=queue)
    assert not joined and jobs.submit_patch_index(data_folder, TEACH, patch_request(scan), scan.spec, queue=queue)[1]
    assert queue.huey.pending_count() == 3 and len(job_records.list_jobs(data_folder)) == 3


def test_who_may_queue_what(scan, data_folder):
    from core.train import lr_finder

    queue = jobs.make_queue(data_folder)
    config = tiny(scan)
    with pytest.raises(Forbidden, match="the teacher prepares the LR finder"):
        jobs.submit_lr_find(data_folder, ALICE, config, scan.spec, queue=queue)
    with pytest.raises(Forbidden, match="the teacher prepares the LR finder"):  # the in-page path asks the same
        lr_finder.require_allowed(ALICE, config, data_folder / "features")
    with pytest.raises(Forbidden, match="the teacher prepares the body features"):
        jobs.submit_extract(data_folder, ALICE, config, scan.spec, queue=queue)
    too_many = patch_request(scan, n=len(scan.items))
    with mock.patch.object(jobs, "STUDENT_PATCH_IMAGES", 20):
        with pytest.raises(Forbidden, match="at most 20 images"):
            jobs.submit_patch_index(data_folder, ALICE, too_many, scan.spec, queue=queue)
        assert jobs.submit_patch_index(data_folder, TEACH, too_many, scan.spec, queue=queue)[0].status == "queued"
    mine, _ = jobs.submit_patch_index(data_folder, ALICE, patch_request(scan), scan.spec, queue=queue)
    with pytest.raises(job_records.JobError, match="one at a time"):  # a second request of her own waits
        jobs.submit_patch_index(data_folder, ALICE, patch_request(scan, stage="0.0.6"), scan.spec, queue=queue)
    with pytest.raises(Forbidden):
        jobs.stop_job(data_folder, ALICE, mine.job_id)  # only the teacher stops
    assert job_records.load_job(data_folder, mine.job_id).status == "queued"
    with pytest.raises(ConfigError):  # body features exist only for a fast stage 1
        jobs.submit_extract(data_folder, TEACH, tiny(scan, fast=False), scan.spec, queue=queue)


def test_the_worker_runs_each_kind_and_students_then_use_the_cache(scan, data_folder):
    from core.inside import patches
    from core.train import learners, lr_finder

    queue = jobs.make_queue(data_folder)
    config = tiny(scan)
    features_dir = data_folder / "features"
    extract, _ = jobs.submit_extract(data_folder, TEACH, config, scan.spec, queue=queue)
    request = patch_request(scan)
    index, _ = jobs.submit_patch_index(data_folder, ALICE, request, scan.spec, queue=queue)
    assert drain(queue) == 2
    assert job_records.load_job(data_folder, extract.job_id).status == "done"
    assert learners.features_cached(config, features_dir) and lr_finder.cheap(config, features_dir)
    done = job_records.load_job(data_folder, index.job_id)
    assert done.status == "done", done.error
    assert patches.load_index(request.path(data_folder)).paths == list(request.paths)

    lr_job, _ = jobs.submit_lr_find(data_folder, ALICE, config, scan.spec, queue=queue)  # cached: a student may
    drain(queue)
    found = job_records.load_job(data_folder, lr_job.job_id)
    assert found.status == "done" and found.result is not None and "valley" in found.result.suggestions
    assert found.last is not None and found.last.kind == "lr_find"
    assert job_records.find_job(job_records.list_jobs(data_folder), "lr_find", found.key, ("done",)) == found
    assert not any(p.name.startswith(".lrfind-") for p in (data_folder / "runs").iterdir())


def test_a_stopped_extraction_saves_no_cache(scan, data_folder):
    from core.train import learners

    queue = jobs.make_queue(data_folder)
    config = tiny(scan)
    record, _ = jobs.submit_extract(data_folder, TEACH, config, scan.spec, queue=queue)
    job_records.update_job(data_folder, record.job_id, stop_requested=True)  # as if Stop came mid-way
    drain(queue)
    stopped = job_records.load_job(data_folder, record.job_id)
    assert stopped.status == "stopped" and "nothing was saved" in stopped.error
    assert not learners.features_cached(config, data_folder / "features")
    assert not list((data_folder / "features").glob(".tmp-*"))


def test_a_dead_workers_temp_cache_files_are_removed(scan, data_folder):
    from core.train.features import feature_spec

    config = tiny(scan)
    request = patch_request(scan)
    key = feature_spec(config, config.stages[0]).key
    half_features = data_folder / "features" / f".tmp-{key}-0badf00d"
    half_features.mkdir(parents=True)
    (half_features / "train_x.npy").write_bytes(b"half")
    index_file = request.path(data_folder)
    half_index = index_file.parent / f".{index_file.name}.xyz.tmp"
    half_index.write_bytes(b"half")
    other = data_folder / "features" / ".tmp-someoneelse-12345678"
    other.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for kind, cfg, patch in (("extract", config, None), ("patch_index", None, request)):
        record = job_records.JobRecord(f"dead{kind.replace('_', '')}", "t", cfg, scan.spec, status="running",
                                       pid=dead.pid, host=socket.gethostname(), kind=kind, key="k", patch=patch)  # fmt: skip
        job_records.save_job(data_folder, record)
    failed = job_records.list_jobs(data_folder)
    assert [j.status for j in failed] == ["failed", "failed"] and all("killed or crashed" in j.error for j in failed)
    assert not half_features.exists() and not half_index.exists() and not index_file.exists()
    assert other.exists()  # another job's temp is not ours to remove


def test_a_worker_killed_mid_extraction_leaves_no_cache_and_a_failed_job(scan, data_folder):
    from core.train import learners

    config = RunConfig(dataset=scan.fingerprint, img_size=160, bs=16,
                       stages=(StageConfig(epochs=1, lr_max=3e-3, fast=True, views=8),))  # fmt: skip
    record, _ = jobs.submit_extract(data_folder, TEACH, config, scan.spec)
    proc = start_worker(data_folder)
    try:
        last = wait_for(lambda: job_records.load_job(data_folder, record.job_id).last)
        assert last.kind == "extract"  # killed while extracting
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    failed = job_records.list_jobs(data_folder)[0]
    assert failed.status == "failed" and "killed or crashed" in failed.error
    assert not learners.features_cached(config, data_folder / "features")
    assert not list((data_folder / "features").glob(".*")) if (data_folder / "features").exists() else True


def test_the_workers_thread_cap_survives_pick_device(monkeypatch):
    """Every training and LR finder calls pick_device, which used to set one thread per core, undoing the cap."""
    import torch

    from core.nets import models

    before = torch.get_num_threads()
    monkeypatch.setenv(models.THREADS_ENV, "")  # restored after the test, as limit_resources sets it
    monkeypatch.setattr(os, "nice", lambda n: 0)  # this test process keeps its priority
    try:
        assert worker.limit_resources(1) == 1
        models.pick_device()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


# ---- the broker carries no code (issue 18, item 6) ---------------------------------------------------


class _Planted:
    """A pickle that, once unpickled, runs a shell command: it writes a file."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.path}",))


def test_a_pickle_pushed_onto_the_redis_queue_is_never_run(scan, data_folder, redis_url, tmp_path):
    """The attack: LPUSH a pickle onto huey's queue key (and its schedule) of a real
    redis-server; the worker consumes the queue and runs the next real job, never the pickle."""
    import pickle

    import redis
    from huey.registry import Message

    marker = tmp_path / "pwned"
    queue = jobs.make_queue(data_folder, redis_url)
    client = redis.Redis.from_url(redis_url)
    evil = pickle.dumps(_Planted(marker))
    # a bare pickle, and one shaped as huey's own message for our task with a pickled argument
    shaped = pickle.dumps(Message("x", jobs.TASK_NAME, None, 0, 0, None, (_Planted(marker),), {}, None, None))
    client.lpush(queue.huey.storage.queue_key, evil, shaped)
    client.zadd(queue.huey.storage.schedule_key, {evil: 0})
    record = jobs.submit(data_folder, TEACH, tiny(scan), scan.spec, queue=queue)
    [raw] = [m for m in client.lrange(queue.huey.storage.queue_key, 0, -1) if m not in (evil, shaped)]
    assert b"\x80" not in raw and record.job_id.encode() in raw  # JSON holding the job id, not a pickle
    proc = start_worker(data_folder, "--queue", redis_url)
    try:
        done = wait_for(
            lambda: (j := job_records.load_job(data_folder, record.job_id)).status in ("done", "failed") and j
        )
        assert done.status == "done", done.error
        wait_for(lambda: client.llen(queue.huey.storage.queue_key) == 0, timeout=30)  # the pickles were consumed
        time.sleep(2)  # and the scheduler had its turn at the planted schedule entry
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert not marker.exists(), "the worker unpickled a message from the queue"
    with pytest.raises(ValueError):
        queue.huey.serializer.deserialize(evil)  # refused before any unpickling
    assert not marker.exists()


def test_the_sqlite_queue_refuses_pickles_too(scan, data_folder, tmp_path):
    import pickle
    import sqlite3

    marker = tmp_path / "pwned"
    queue = jobs.make_queue(data_folder)
    with sqlite3.connect(data_folder / "jobs" / jobs.QUEUE_FILE) as db:
        db.execute(
            "insert into task (queue, data, priority) values (?, ?, 0)", ("petlab", pickle.dumps(_Planted(marker)))
        )
    record = jobs.submit(data_folder, TEACH, tiny(scan), scan.spec, queue=queue)
    with pytest.raises(ValueError):
        queue.huey.dequeue()  # the planted message is taken off the queue and refused
    assert drain(queue) == 1 and not marker.exists()
    assert job_records.load_job(data_folder, record.job_id).status == "done"
    for wrong in (b"{}", b'{"job": "../x"}', b"[1]", b"\xff" * 10, b"x" * 5000):
        with pytest.raises(ValueError):
            queue.huey.serializer.deserialize(wrong)


# ---- the job store: typed, quarantined, indexed, pruned (issue 18, items 11 and 13) ------------------


def test_a_wrong_typed_record_is_set_aside_and_the_rest_still_work(scan, data_folder):
    """The attack: one record with "created": "yesterday" made every listing (so every page) fail."""
    queue = jobs.make_queue(data_folder)
    good = jobs.submit(data_folder, TEACH, tiny(scan), scan.spec, queue=queue)
    other = jobs.submit(data_folder, TEACH, tiny(scan, epochs=2), scan.spec, queue=queue)
    folder = job_records.jobs_dir(data_folder)
    bad = {**good.to_json(), "job_id": "20000101000000bad001", "created": "yesterday"}
    (folder / "20000101000000bad001.json").write_text(json.dumps(bad))
    worse = {**good.to_json(), "job_id": "20000101000000bad002", "epochs": "lots", "status": "running", "pid": 1}
    (folder / "20000101000000bad002.json").write_text(json.dumps(worse))
    (folder / "20000101000000bad003.json").write_text('{"job_id": ')

    found = job_records.list_jobs(data_folder)  # every page's sidebar does this
    assert [j.job_id for j in found] == [good.job_id, other.job_id]
    aside = {q.job_id: q.reason for q in job_records.quarantined(data_folder)}
    assert set(aside) == {"20000101000000bad001", "20000101000000bad002", "20000101000000bad003"}
    assert "created" in aside["20000101000000bad001"] and "epochs" in aside["20000101000000bad002"]
    assert not (folder / "20000101000000bad001.json").exists()  # out of the store: it never runs
    jobs.stop_job(data_folder, TEACH, other.job_id)  # the teacher keeps control of the others
    assert drain(queue) == 2
    assert [j.status for j in job_records.list_jobs(data_folder)] == ["done", "cancelled"]
    with pytest.raises(Forbidden):
        jobs.clear_unreadable(data_folder, ALICE)
    assert jobs.clear_unreadable(data_folder, TEACH) == 3 and job_records.quarantined(data_folder) == []


def fake_ended(base: Path, n: int, spec, config, start: float = 1_000_000.0, first: int = 0) -> None:
    """n ended records written straight to disk, as a store that was never pruned holds them."""
    folder = job_records.jobs_dir(base)
    template = job_records.JobRecord(
        "x", "t", config, spec, status="done", created=start, started=start, finished=start
    )
    data = template.to_json()
    for i in range(n):
        job_id = f"19700101000000{first + i:06d}"
        t = start + i
        (folder / f"{job_id}.json").write_text(
            json.dumps({**data, "job_id": job_id, "created": t, "started": t, "finished": t + 1})
        )


def test_a_sidebar_read_opens_only_the_active_and_recent_records_at_any_store_size(scan, data_folder, monkeypatch):
    monkeypatch.setattr(job_records, "KEEP_ENDED", 10**6)  # the index alone: nothing pruned
    queue = jobs.make_queue(data_folder)
    fake_ended(data_folder, 3000, scan.spec, tiny(scan), start=time.time() - 10_000)
    running = jobs.submit(data_folder, TEACH, tiny(scan), scan.spec, queue=queue)
    job_records.update_job(data_folder, running.job_id, status="running", started=time.time(), pid=os.getpid(),
                           host=socket.gethostname())  # fmt: skip
    queued = jobs.submit(data_folder, TEACH, tiny(scan, epochs=2), scan.spec, queue=queue)
    assert len(job_records.index(data_folder)) == 3002  # the index is built once from the files
    parsed = mock.patch.object(job_records.JobRecord, "from_json", wraps=job_records.JobRecord.from_json)
    with parsed as from_json:
        side = job_records.list_jobs(data_folder, ended=3)  # what the sidebar asks every 3 s
    assert [j.job_id for j in side[-2:]] == [running.job_id, queued.job_id] and len(side) == 5
    assert from_json.call_count == 5  # not 3,002
    assert side[0].job_id == "19700101000000002997"  # the most recently ended come with them

    (job_records.jobs_dir(data_folder) / "19700101000000000005.json").unlink()  # changed behind the index's back
    fake_ended(data_folder, 1, scan.spec, tiny(scan), start=time.time(), first=9999)
    rows = job_records.index(data_folder)
    assert len(rows) == 3002 and "19700101000000000005" not in rows and rows["19700101000000009999"].finished
    monkeypatch.setattr(job_records, "KEEP_ENDED", 100)
    fake_ended(data_folder, 1, scan.spec, tiny(scan), start=time.time(), first=10000)
    assert len(job_records.index(data_folder)) == 102  # a store found over its bound is pruned at once


def test_old_ended_jobs_are_pruned_by_count_and_age_never_active_ones(scan, data_folder):
    queue = jobs.make_queue(data_folder)
    fake_ended(data_folder, 50, scan.spec, tiny(scan), start=time.time() - 40 * 86400)  # 40 days old
    waiting = jobs.submit(data_folder, TEACH, tiny(scan), scan.spec, queue=queue)
    job_records.update_job(data_folder, waiting.job_id, created=time.time() - 90 * 86400)  # active: kept however old
    gone = job_records.prune_jobs(data_folder, keep=1000, days=30)
    assert len(gone) == 50 and [j.job_id for j in job_records.read_all(data_folder)] == [waiting.job_id]
    fake_ended(data_folder, 30, scan.spec, tiny(scan), start=time.time() - 3600)
    assert len(job_records.prune_jobs(data_folder, keep=10, days=30)) == 20
    kept = job_records.read_all(data_folder)
    assert len(kept) == 11 and waiting.job_id in {j.job_id for j in kept}
    assert min(j.finished for j in kept if not j.active) > time.time() - 3600 + 19  # the newest ten stayed


# ---- atomic enqueue: a broken broker leaves no ghost (issue 18, item 12) ------------------------------


def damage_queue_file(base: Path) -> None:
    """jobs/queue.db overwritten in place with what is not a database (its journal files gone with it)."""
    folder = job_records.jobs_dir(base)
    for suffix in ("-wal", "-shm"):
        (folder / f"{jobs.QUEUE_FILE}{suffix}").unlink(missing_ok=True)
    with open(folder / jobs.QUEUE_FILE, "r+b") as fh:  # in place: a connection already open may not notice
        fh.write(b"this is not a database " * 200)


def test_a_failed_enqueue_leaves_no_ghost_and_the_teacher_repairs_the_queue(scan, data_folder):
    """The attack: with jobs/queue.db damaged, a request raised DatabaseError, its record stayed "queued"
    forever and every later request of that student was refused as "still waiting"."""
    import sqlite3

    queue = jobs.make_queue(data_folder)  # the app's (it lives as long as the server)
    earlier = jobs.submit(data_folder, TEACH, tiny(scan), scan.spec, queue=queue)
    damage_queue_file(data_folder)
    for _ in range(3):  # a queue opened now (a server started after the damage) cannot open it
        with pytest.raises(jobs.QueueUnavailable, match="nothing was queued"):
            jobs.submit_patch_index(data_folder, ALICE, patch_request(scan), scan.spec)
    with mock.patch.object(queue, "run_job", side_effect=sqlite3.DatabaseError("database disk image is malformed")):
        with pytest.raises(jobs.QueueUnavailable, match="nothing was queued"):  # the record was written first
            jobs.submit_patch_index(data_folder, ALICE, patch_request(scan), scan.spec, queue=queue)
        with pytest.raises(jobs.QueueUnavailable):
            jobs.submit(data_folder, TEACH, tiny(scan, epochs=2), scan.spec, queue=queue)
    assert [j.job_id for j in job_records.list_jobs(data_folder)] == [earlier.job_id]  # no ghost
    assert "DatabaseError" in jobs.queue_problem(data_folder)

    assert jobs.stop_job(data_folder, TEACH, earlier.job_id).status == "cancelled"  # the teacher keeps control
    with pytest.raises(Forbidden):
        jobs.repair_queue(data_folder, ALICE)
    assert jobs.repair_queue(data_folder, TEACH) == 0
    assert list(job_records.jobs_dir(data_folder).glob(f"{jobs.QUEUE_FILE}.damaged-*"))  # kept for a look
    assert jobs.queue_problem(data_folder) == "" and jobs.queue_problem(data_folder, queue) == ""
    mine, _ = jobs.submit_patch_index(data_folder, ALICE, patch_request(scan), scan.spec, queue=queue)
    assert drain(queue) == 1  # the app's open queue reopened the new file
    assert job_records.load_job(data_folder, mine.job_id).status == "done"


def test_repair_wakes_the_worker_for_jobs_queued_before_the_damage(scan, data_folder):
    waiting = jobs.submit(data_folder, TEACH, tiny(scan), scan.spec, queue=jobs.make_queue(data_folder))
    damage_queue_file(data_folder)
    with pytest.raises(jobs.QueueUnavailable):
        jobs.make_queue(data_folder)  # a worker starting now cannot read it
    assert jobs.repair_queue(data_folder, TEACH) == 1
    assert drain(jobs.make_queue(data_folder)) == 1
    assert job_records.load_job(data_folder, waiting.job_id).status == "done"


# ---- fairness: the teacher first, students in turns, limits per student (issue 18, item 10) ------------

MALLORY_TABS = [Identity(STUDENT, f"m{i}" * 12, client="10.0.0.66") for i in range(5)]  # one computer, 5 tabs
VICTIM = Identity(STUDENT, "v" * 24, client="10.0.0.7")


def test_fresh_tabs_do_not_make_a_student_more_jobs_and_the_queue_has_a_ceiling(scan, data_folder, monkeypatch):
    """The attack: fresh tabs queued 30 patch-index jobs in 16 s (the one-job rule counted the tab)."""
    queue = jobs.make_queue(data_folder)
    first, _ = jobs.submit_patch_index(data_folder, MALLORY_TABS[0], patch_request(scan, n=9), scan.spec, queue=queue)
    for i, tab in enumerate(MALLORY_TABS[1:], start=10):
        with pytest.raises(job_records.JobError, match="one at a time"):
            jobs.submit_patch_index(data_folder, tab, patch_request(scan, n=i), scan.spec, queue=queue)
    assert jobs.submit_patch_index(data_folder, VICTIM, patch_request(scan, n=20), scan.spec, queue=queue)[0].active
    assert [j.client for j in job_records.list_jobs(data_folder)] == ["10.0.0.66", "10.0.0.7"]
    monkeypatch.setattr(jobs, "STUDENT_QUEUE", 2)  # every student together: a ceiling (PETLAB_STUDENT_QUEUE)
    with pytest.raises(job_records.JobError, match="queue is full"):
        jobs.submit_patch_index(data_folder, Identity(STUDENT, "x" * 24, client="10.0.0.9"), patch_request(scan, n=21),
                                scan.spec, queue=queue)  # fmt: skip
    assert jobs.submit(data_folder, TEACH, tiny(scan), scan.spec, queue=queue).active  # never the teacher's


def test_the_teachers_job_runs_next_and_students_take_turns(scan, data_folder, monkeypatch):
    """The attack: one student's requests queued first put 18 jobs ahead of the teacher's Train."""
    monkeypatch.setattr(jobs, "STUDENT_ACTIVE_JOBS", 3)  # a generous limit, so one student has several waiting
    queue = jobs.make_queue(data_folder)
    ran: list[str] = []
    monkeypatch.setattr(jobs, "_run", lambda base, record, on_event, scan_fn, wait=True: ran.append(record.job_id) or jobs.Outcome(
        job_records.JobStatus.DONE))  # fmt: skip
    mallory = [jobs.submit_patch_index(data_folder, MALLORY_TABS[i], patch_request(scan, n=9 + i), scan.spec,
                                       queue=queue)[0] for i in range(3)]  # fmt: skip
    victim, _ = jobs.submit_patch_index(data_folder, VICTIM, patch_request(scan, n=30), scan.spec, queue=queue)
    train = jobs.submit(data_folder, TEACH, tiny(scan), scan.spec, queue=queue)
    rows = job_records.index(data_folder)
    assert job_records.jobs_ahead(rows, train.job_id) == 0  # what the teacher's page says: it starts next
    assert job_records.jobs_ahead(rows, victim.job_id) == 2  # the teacher's, and Mallory's first
    assert drain(queue) == 5
    assert ran == [train.job_id, mallory[0].job_id, victim.job_id, mallory[1].job_id, mallory[2].job_id]


def test_a_training_on_a_full_disk_says_so_and_loses_nothing_saved(scan, data_folder, monkeypatch):
    """The review: a training running when the disk filled failed and saved nothing, with no word why. Now
    the job says the disk is full, the run stored before is untouched, no temp folder is left; below the
    free-space floor no job starts at all."""
    import errno

    from core import quotas

    queue = jobs.make_queue(data_folder)
    config = tiny(scan)
    jobs.submit(data_folder, TEACH, config, scan.spec, queue=queue)
    drain(queue)
    stored = runs.find_run(data_folder / "runs", config)
    weights = (stored.path / "model.pt").read_bytes()

    real_write = runs.atomic_write_bytes

    def full(path, data):
        if path.name == "model.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(path, data)

    monkeypatch.setattr(runs, "atomic_write_bytes", full)
    again = jobs.submit(data_folder, TEACH, config, scan.spec, retrain=True, queue=queue)
    drain(queue)
    failed = job_records.load_job(data_folder, again.job_id)
    assert failed.status == "failed"
    assert "disk is nearly full" in failed.error and "saved nothing" in failed.error and "Errno" not in failed.error
    kept = runs.find_run(data_folder / "runs", config)
    assert kept is not None and kept.created == stored.created and (kept.path / "model.pt").read_bytes() == weights
    assert [p.name for p in (data_folder / "runs").iterdir() if p.name.startswith((".tmp-", ".work-"))] == []

    monkeypatch.setattr(quotas, "free_bytes", lambda path: 100 * quotas.MB)  # under the 500 MB floor
    other = tiny(scan, epochs=2)
    refused = jobs.submit(data_folder, TEACH, other, scan.spec, queue=queue)
    drain(queue)
    record = job_records.load_job(data_folder, refused.job_id)
    assert record.status == "failed" and "100 MB free; Pet Lab keeps 500 MB free" in record.error
    assert runs.find_run(data_folder / "runs", other) is None
