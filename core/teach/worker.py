"""The training worker: `python -m core.teach.worker` consumes the job queue outside Streamlit.

One worker per data folder (a file lock); one job at a time. It lowers its own priority (os.nice)
and caps torch's threads below the number of cores, so the app's interactive pages stay quick while
it trains. `make run` starts it beside the app, and the app starts it when it is not running.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.nets import models
from core.settings import data_dir
from core.storage import atomic_write_json, read_json
from core.store.records import parse_dataclass, to_json
from core.teach import classroom, job_records, jobs
from core.teach.job_records import WORKER_FILE, jobs_dir, process_alive

NICE = 10
HEARTBEAT_SECONDS = 2.0
CLEAN_SECONDS = 3600.0
QUEUE_RETRY_SECONDS = 10.0  # a queue that cannot be opened is tried again this often
WORKER_LOCK = "worker.lock"
APP_WORKER_IDLE_EXIT = 600.0  # a worker the app started stops after this long with nothing queued
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def worker_threads(cores: int | None = None) -> int:
    """Torch threads for training: every core but one (at least one), so the app keeps a core."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores - 1)


def limit_resources(threads: int | None = None) -> int:
    """Lower this process's priority and cap torch's threads; returns the thread count."""
    import torch

    with contextlib.suppress(OSError):  # not permitted: training still runs, at normal priority
        os.nice(NICE)
    threads = threads or worker_threads()
    torch.set_num_threads(threads)
    os.environ[models.THREADS_ENV] = str(threads)  # pick_device (every training, LR finder) keeps this cap
    return threads


def _heartbeat(base: Path, threads: int, queue_kind: str, stop: threading.Event, idle_exit: float | None) -> None:
    """Write jobs/worker.json every few seconds; clean old student spaces and prune old jobs hourly; exit after
    idle_exit idle seconds."""
    started, last_clean, last_busy = time.time(), 0.0, time.time()
    while not stop.is_set():
        now = time.time()
        if idle_exit is not None:
            if any(row.active for row in job_records.index(base).values()):
                last_busy = now
            elif now - last_busy > idle_exit:
                os.kill(os.getpid(), signal.SIGINT)  # the consumer's graceful stop: nothing is running
                return
        info = WorkerInfo(os.getpid(), socket.gethostname(), threads, queue_kind, os.nice(0), started, now)
        atomic_write_json(jobs_dir(base) / WORKER_FILE, to_json(info))
        if now - last_clean > CLEAN_SECONDS:
            last_clean = now
            classroom.clean_student_spaces(base)
            job_records.prune_jobs(base)
        stop.wait(HEARTBEAT_SECONDS)


def serve(base: Path, url: str | None = None, threads: int | None = None, idle_exit: float | None = None) -> int:
    """Run the consumer until SIGINT/SIGTERM; returns 0, or 1 when another worker already serves base."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log = logging.getLogger("petlab.worker")
    with worker_lock(base) as mine:
        if not mine:
            log.info("another worker already serves %s", base)
            return 1
        threads = limit_resources(threads)
        queue = _open_queue(base, url, log, idle_exit)
        if queue is None:
            return 1
        failed = job_records.reconcile(base)  # jobs a previous worker left running
        if failed:
            log.warning("marked %d job(s) of a dead worker as failed: %s", len(failed), ", ".join(failed))
        stop = threading.Event()
        beat = threading.Thread(target=_heartbeat, args=(base, threads, queue.kind, stop, idle_exit), daemon=True)
        beat.start()
        log.info("serving %s (%s queue, %d torch threads, nice %d)", base, queue.kind, threads, os.nice(0))
        consumer = queue.huey.create_consumer(workers=1, worker_type="thread", periodic=False, initial_delay=0.2,
                                              max_delay=1.0, check_worker_health=True)  # fmt: skip
        try:
            consumer.run()
        finally:
            stop.set()
            job_records.fail_jobs_of(
                base, os.getpid(), "The worker was shut down while this job was running: nothing was saved."
            )
            (jobs_dir(base) / WORKER_FILE).unlink(missing_ok=True)
    return 0


def _open_queue(base: Path, url: str | None, log: logging.Logger, give_up: float | None) -> jobs.Queue | None:
    """The queue, waiting (with this data folder's worker lock held, so the app starts no other worker) while
    it cannot be opened (jobs/queue.db damaged: the teacher repairs it on the Class page); None after give_up s."""
    started = time.time()
    while True:
        try:
            return jobs.make_queue(base, url)
        except jobs.QueueUnavailable as err:
            if give_up is not None and time.time() - started > give_up:
                log.error("giving up: %s (%s)", err, err.__cause__)
                return None
            log.error("%s (%s); trying again every %.0f s", err, err.__cause__, QUEUE_RETRY_SECONDS)
            time.sleep(QUEUE_RETRY_SECONDS)


# ---- managing the worker process (from the app, tests and tools) ------------------------------------


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
    if not (jobs_dir(base) / WORKER_LOCK).exists():
        return False  # no worker ever ran here (and on a full disk the lock file could not even be made)
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
        [sys.executable, "-m", "core.teach.worker", "--data", str(base), "--idle-exit", str(APP_WORKER_IDLE_EXIT)],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # not killed with the app's process group; closing a tab never stops it
    )
    log.close()
    return proc.pid


@dataclass(frozen=True)
class WorkerInfo:
    """The worker's heartbeat (jobs/worker.json), written every HEARTBEAT_SECONDS while it serves the queue."""

    pid: int
    host: str
    threads: int
    queue: str  # core.teach.jobs.Queue.kind: "sqlite" | "redis"
    nice: int
    started: float
    updated: float


def worker_info(base: Path) -> WorkerInfo | None:
    """The running worker's last heartbeat (pid, threads, queue, time), or None (none, or unreadable)."""
    try:
        return parse_dataclass(WorkerInfo, read_json(jobs_dir(base) / WORKER_FILE), WORKER_FILE)
    except ValueError:  # missing, broken, or a RecordError
        return None


def stop_worker(base: Path, timeout: float = 10.0) -> bool:
    """Ask the local worker to stop (SIGTERM) and wait for its lock to be released."""
    info = worker_info(base)
    pid = info.pid if info is not None else None
    if not pid or not process_alive(pid):
        return not worker_running(base)
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not worker_running(base):
            return True
        time.sleep(0.1)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="data folder (default: $PETLAB_DATA or ~/.petlab)")
    parser.add_argument("--queue", default=None, help="redis://host:port/db (default: $PETLAB_QUEUE, else SQLite)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: cores - 1)")
    parser.add_argument("--idle-exit", type=float, default=None, help="exit after this many seconds with no job")
    args = parser.parse_args(argv)
    base = (args.data or data_dir()).expanduser().resolve()
    base.mkdir(parents=True, exist_ok=True)
    return serve(base, args.queue, args.threads, args.idle_exit)


if __name__ == "__main__":
    raise SystemExit(main())
