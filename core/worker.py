"""The training worker: `python -m core.worker` consumes the job queue outside Streamlit.

One worker per data folder (a file lock); one job at a time. It lowers its own priority (os.nice)
and caps torch's threads below the number of cores, so the app's interactive pages stay quick while
it trains. `make run` starts it beside the app, and the app starts it when it is not running.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path

from core import classroom, jobs
from core.settings import data_dir
from core.storage import atomic_write_json

NICE = 10
HEARTBEAT_SECONDS = 2.0
CLEAN_SECONDS = 3600.0


def worker_threads(cores: int | None = None) -> int:
    """Torch threads for training: every core but one (at least one), so the app keeps a core."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores - 1)


def limit_resources(threads: int | None = None) -> int:
    """Lower this process's priority and cap torch's threads; returns the thread count."""
    import torch

    with contextlib.suppress(OSError):  # not permitted: training still runs, at normal priority
        os.nice(NICE)
    from core.models import set_process_thread_ceiling

    threads = threads or worker_threads()
    torch.set_num_threads(threads)
    set_process_thread_ceiling(threads)  # the job runs in a consumer thread, whose pick_device stays under it
    return threads


def _heartbeat(base: Path, threads: int, queue_kind: str, stop: threading.Event, idle_exit: float | None) -> None:
    """Write jobs/worker.json every few seconds; clean old student spaces; exit after idle_exit idle seconds."""
    started, last_clean, last_busy = time.time(), 0.0, time.time()
    while not stop.is_set():
        now = time.time()
        if idle_exit is not None:
            if any(j.active for j in jobs.list_jobs(base, reconcile_dead=False)):
                last_busy = now
            elif now - last_busy > idle_exit:
                os.kill(os.getpid(), signal.SIGINT)  # the consumer's graceful stop: nothing is running
                return
        atomic_write_json(
            jobs.jobs_dir(base) / jobs.WORKER_FILE,
            {"pid": os.getpid(), "host": socket.gethostname(), "threads": threads, "queue": queue_kind,
             "nice": os.nice(0), "started": started, "updated": now},
        )  # fmt: skip
        if now - last_clean > CLEAN_SECONDS:
            last_clean = now
            classroom.clean_student_spaces(base)
        stop.wait(HEARTBEAT_SECONDS)


def serve(base: Path, url: str | None = None, threads: int | None = None, idle_exit: float | None = None) -> int:
    """Run the consumer until SIGINT/SIGTERM; returns 0, or 1 when another worker already serves base."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log = logging.getLogger("petlab.worker")
    with jobs.worker_lock(base) as mine:
        if not mine:
            log.info("another worker already serves %s", base)
            return 1
        threads = limit_resources(threads)
        queue = jobs.make_queue(base, url)
        failed = jobs.reconcile(base)  # jobs a previous worker left running
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
            jobs.fail_jobs_of(
                base, os.getpid(), "The worker was shut down while this job was running: nothing was saved."
            )
            (jobs.jobs_dir(base) / jobs.WORKER_FILE).unlink(missing_ok=True)
    return 0


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
