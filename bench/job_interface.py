"""What laptop mode's job interface costs: the same training through core.train.training.train_run and through
core.teach.jobs.submit with the InProcess executor (a job record written and updated as it goes), side by side.

    .venv/bin/python -m bench.job_interface [--rounds 3] [--epochs 2]

Each round retrains one tiny run (mobilenet_v2, offline weights, generated Pets-like images, the full
fastai way so every batch is an event) both ways in alternating order, and prints the median seconds of
each and their ratio, with the load average: the job interface adds a JSON write at most once a second
(and at each stage and epoch) to what the page does anyway.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="petlab-jobbench-"))
    os.environ["PETLAB_DATA"] = str(base / "data")
    from core.auth import LAPTOP_USER
    from core.data.datasets import scan_dataset
    from core.data.pets import pets_spec
    from core.data.synthetic import make_pets_like
    from core.store.records import RunConfig, StageConfig
    from core.teach import jobs
    from core.train import training

    data = base / "data"
    scan = scan_dataset(pets_spec(make_pets_like(base / "images", n_per_class=12)))
    config = RunConfig(dataset=scan.fingerprint, img_size=64, bs=8, stages=(StageConfig(args.epochs, 3e-3),))
    events = {"direct": 0, "job": 0}

    def direct() -> None:
        training.train_run(config, scan, data / "runs", data / "features", retrain=True,
                           on_event=lambda e: events.__setitem__("direct", events["direct"] + 1))  # fmt: skip

    def job() -> None:
        here = jobs.InProcess(data, scan_fn=lambda spec: scan,
                              on_event=lambda e: events.__setitem__("job", events["job"] + 1))  # fmt: skip
        record = jobs.submit(data, LAPTOP_USER, config, scan.spec, retrain=True, queue=here)
        assert record.status == "done", record.error

    direct()  # warm-up: weights, caches, fastai imports
    times: dict[str, list[float]] = {"direct": [], "job": []}
    for n in range(args.rounds):
        for name, run in (("direct", direct), ("job", job)) if n % 2 == 0 else (("job", job), ("direct", direct)):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    direct_s, job_s = statistics.median(times["direct"]), statistics.median(times["job"])
    print(f"load average {os.getloadavg()[0]:.2f}; {args.rounds} rounds of {args.epochs} epochs, "
          f"{len(scan.items)} images, {events['job'] // args.rounds} events per job, "
          f"{events['direct'] // (args.rounds + 1)} per direct run")  # fmt: skip
    print(f"train_run directly:          median {direct_s:.2f} s  {[round(t, 2) for t in times['direct']]}")
    print(f"jobs.submit(InProcess):      median {job_s:.2f} s  {[round(t, 2) for t in times['job']]}")
    print(f"ratio job / direct:          {job_s / direct_s:.3f}")


if __name__ == "__main__":
    main()
