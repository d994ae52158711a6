"""Job store: what one sidebar read costs as the store grows, reading every record vs through the index.

Every tab's sidebar lists the jobs every 3 s. Before issue 18 that parsed every record ever written
(1.87 s at 20,000 records on the class server). Now a read opens the index and only the active jobs and
the last ended one; old ended jobs are pruned (PETLAB_JOBS_KEPT, PETLAB_JOBS_DAYS). For each store size
this writes that many ended records plus two active ones, then times side by side in one run:

- every record: parse all of them and sort (what the sidebar did);
- index only: `list_jobs(base, ended=1)` (what the sidebar does now) with pruning switched off;
- first read: the same on a store with no index yet: the index is built once from the files and the
  store pruned to its bound (PETLAB_JOBS_KEPT ended jobs);
- then: every later read; ratio: every record / then.

    .venv/bin/python -m bench.job_store --sizes 1000 5000 10000 20000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from core.data.datasets import DatasetSpec
from core.storage import read_json
from core.store.records import EpochRow, RunConfig, StageConfig
from core.teach import job_records
from core.teach.job_records import JobStatus


def fill(base: Path, n: int) -> None:
    """n ended records (as a store never pruned holds them) and two active ones, written straight to disk."""
    config = RunConfig(dataset="fp", img_size=64, stages=(StageConfig(epochs=2, lr_max=3e-3, fast=True),))
    spec = DatasetSpec(name="pets", kind="pets", root="/data/pets/images")
    start = time.time() - n - 100
    epochs = [EpochRow(0, e, train_loss=1.0, valid_loss=0.9, error_rate=0.3) for e in range(2)]
    template = job_records.JobRecord("x", "stage 1", config, spec, status=JobStatus.DONE, created=start, epochs=epochs)
    data = template.to_json()
    folder = job_records.jobs_dir(base)
    for i in range(n + 2):
        job_id = f"20250101000000{i:06d}"
        t = start + i
        status = "done" if i < n else ("running" if i == n else "queued")
        record = {**data, "job_id": job_id, "status": status, "created": t, "started": t, "finished": t + 1}
        if status != "done":
            record.update(finished=None, started=t if status == "running" else None, host="elsewhere", updated=9e12)
        (folder / f"{job_id}.json").write_text(json.dumps(record))


def every_record(base: Path) -> list:
    """The sidebar's read before the index: parse every record, sort by creation."""
    found = []
    for path in job_records.jobs_dir(base).glob("*.json"):
        if path.name in (job_records.INDEX_FILE, job_records.WORKER_FILE):
            continue
        try:
            found.append(job_records.JobRecord.from_json(read_json(path)))
        except ValueError:
            continue
    return sorted(found, key=lambda r: r.created)


def sidebar_read(base: Path) -> list:
    """What a sidebar asks every 3 s now: the active jobs and the last ended one."""
    return job_records.list_jobs(base, ended=1)


def timed(fn, base: Path, repeat: int) -> float:
    """Median seconds of fn(base) over repeat calls."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(base)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000, 20000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"load average: {Path('/proc/loadavg').read_text().split()[:3]}, cores: {os.cpu_count()}")
    print(
        f"{'records':>8} {'every record':>13} {'index only':>11} {'first read':>11} {'then':>8} {'kept':>6} {'ratio':>7}"
    )
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as unpruned, tempfile.TemporaryDirectory() as pruned:
            a, b = Path(unpruned), Path(pruned)
            fill(a, n)
            fill(b, n)
            old = timed(every_record, a, max(1, args.repeat // 2))
            keep = job_records.KEEP_ENDED
            job_records.KEEP_ENDED = 10**9  # the index alone, nothing pruned
            sidebar_read(a)
            indexed = timed(sidebar_read, a, args.repeat)
            job_records.KEEP_ENDED = keep
            first = timed(sidebar_read, b, 1)  # builds the index and prunes to its bound
            assert len(sidebar_read(b)) == 3
            then = timed(sidebar_read, b, args.repeat)
            kept = len(job_records.index(b))
        print(f"{n:>8} {old:>12.3f}s {indexed:>10.4f}s {first:>10.2f}s {then:>7.4f}s {kept:>6} {old / then:>6.0f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
