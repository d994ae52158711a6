"""Training jobs: typed records, the teacher-only queue, stop/cancel, a worker process that can be killed."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core import jobs, runs
from core.auth import LAPTOP_USER, STUDENT, TEACHER, Forbidden, Identity
from core.datasets import scan_dataset
from core.pets import pets_spec
from core.records import RunConfig, StageConfig

ROOT = Path(__file__).resolve().parents[2]
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
    event = jobs.JobEvent.from_training({"kind": "batch", "stage": 0, "epoch": 1, "n_epoch": 2, "iter": 3,
                                         "n_iter": 6, "loss": 0.5, "lr": 1e-3, "extra": 1})  # fmt: skip
    assert event.fraction == pytest.approx(0.75) and "loss 0.500" in event.text()
    with pytest.raises(ValueError):
        jobs.JobEvent.from_training({"loss": 1.0})
    record = jobs.JobRecord("j1", "t", tiny(scan), scan.spec, last=event, epochs=[{"epoch": 0}])
    again = jobs.JobRecord.from_json(record.to_json())
    assert again == record and isinstance(again.config, RunConfig) and isinstance(again.last, jobs.JobEvent)
    for bad in ([], {"job_id": "x"}, {**record.to_json(), "status": "exploded"}):
        with pytest.raises(ValueError):
            jobs.JobRecord.from_json(bad)
    (jobs.jobs_dir(data_folder) / "broken.json").write_text("{")
    assert jobs.list_jobs(data_folder) == []  # a broken record is skipped
    with pytest.raises(jobs.JobError):
        jobs.load_job(data_folder, "../../etc")


def test_a_student_cannot_queue_or_stop(scan, data_folder):
    queue = jobs.make_queue(data_folder)
    with pytest.raises(Forbidden):
        jobs.submit(data_folder, ALICE, tiny(scan), scan.spec, queue=queue)
    assert jobs.list_jobs(data_folder) == [] and queue.huey.pending_count() == 0
    record = jobs.submit(data_folder, TEACH, tiny(scan), scan.spec, queue=queue)
    with pytest.raises(Forbidden):
        jobs.stop_job(data_folder, ALICE, record.job_id)
    assert jobs.load_job(data_folder, record.job_id).status == "queued"
    with pytest.raises(jobs.JobError):
        jobs.make_queue(data_folder, "amqp://nope")


def test_teacher_queues_the_lesson_and_cancels_one(scan, data_folder):
    queue = jobs.make_queue(data_folder)
    stage1 = StageConfig(epochs=1, lr_max=3e-3, fast=True)
    first = jobs.submit(data_folder, TEACH, tiny(scan), scan.spec, queue=queue)
    stage2 = tiny(scan, stages=(stage1, StageConfig(epochs=1, lr_max=1e-4, lr_min=1e-6, unfreeze=True)))
    second = jobs.submit(data_folder, TEACH, stage2, scan.spec, queue=queue)
    third = jobs.submit(data_folder, LAPTOP_USER, tiny(scan, epochs=2), scan.spec, queue=queue)
    assert [j.status for j in jobs.list_jobs(data_folder)] == ["queued"] * 3
    jobs.stop_job(data_folder, TEACH, third.job_id)
    assert drain(queue) == 3
    done = {j.job_id: j for j in jobs.list_jobs(data_folder)}
    assert [done[j.job_id].status for j in (first, second, third)] == ["done", "done", "cancelled"]
    assert done[second.job_id].run_id == stage2.run_id
    assert runs.find_run(data_folder / "runs", stage2) is not None
    assert done[first.job_id].epochs and done[first.job_id].last is not None
    with pytest.raises(jobs.JobError, match="already done"):
        jobs.stop_job(data_folder, TEACH, first.job_id)


def test_a_failing_job_says_why(scan, data_folder):
    queue = jobs.make_queue(data_folder)
    wrong = RunConfig(dataset="not-this-dataset", img_size=32, stages=(StageConfig(1, 3e-3, fast=True),))
    record = jobs.submit(data_folder, TEACH, wrong, scan.spec, queue=queue)
    drain(queue)
    failed = jobs.load_job(data_folder, record.job_id)
    assert failed.status == "failed" and "fingerprint" in failed.error


def test_stop_a_running_job_saves_nothing(scan, data_folder):
    queue = jobs.make_queue(data_folder)
    config = tiny(scan, epochs=200, fast=False)
    record = jobs.submit(data_folder, TEACH, config, scan.spec, queue=queue)
    worker = threading.Thread(target=drain, args=(queue,))
    worker.start()
    wait_for(lambda: jobs.load_job(data_folder, record.job_id).last is not None)
    jobs.stop_job(data_folder, TEACH, record.job_id)
    worker.join(timeout=120)
    stopped = jobs.load_job(data_folder, record.job_id)
    assert stopped.status == "stopped" and "nothing was saved" in stopped.error
    assert runs.find_run(data_folder / "runs", config) is None


def start_worker(base: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PETLAB_DATA=str(base))
    return subprocess.Popen([sys.executable, "-m", "core.worker", "--data", str(base), *extra], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def test_worker_process_trains_and_a_killed_worker_leaves_no_half_run(scan, data_folder):
    long = tiny(scan, epochs=200, fast=False)
    record = jobs.submit(data_folder, TEACH, long, scan.spec)  # queued with no worker, no tab, nothing
    proc = start_worker(data_folder)
    try:
        info = wait_for(lambda: jobs.worker_info(data_folder))
        assert info["threads"] == max(1, os.cpu_count() - 1) and info["nice"] >= 10 and info["queue"] == "sqlite"
        assert jobs.worker_running(data_folder) and jobs.ensure_worker(data_folder) is None  # one worker only
        wait_for(lambda: jobs.load_job(data_folder, record.job_id).last is not None)
        assert any(p.name.startswith(".work-") for p in (data_folder / "runs").iterdir())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    failed = jobs.list_jobs(data_folder)[0]  # listing notices the dead worker
    assert failed.status == "failed" and "killed or crashed" in failed.error
    assert runs.list_runs(data_folder / "runs") == ([], [])
    assert not [p for p in (data_folder / "runs").iterdir() if p.is_dir()]  # no half-written folder left
    assert not jobs.worker_running(data_folder)

    quick = jobs.submit(data_folder, TEACH, tiny(scan), scan.spec)
    pid = jobs.ensure_worker(data_folder)  # what the app does when no worker runs
    assert pid
    try:
        done = wait_for(lambda: (j := jobs.load_job(data_folder, quick.job_id)).status in ("done", "failed") and j)
        assert done.status == "done", done.error
        assert runs.find_run(data_folder / "runs", tiny(scan)) is not None
    finally:
        assert jobs.stop_worker(data_folder)


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
        done = wait_for(lambda: (j := jobs.load_job(data_folder, record.job_id)).status in ("done", "failed") and j)
        assert done.status == "done", done.error
        assert jobs.worker_info(data_folder)["queue"] == "redis"
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
    assert not jobs.worker_running(data_folder) and jobs.worker_info(data_folder) is None
