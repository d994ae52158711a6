"""What the LR finder costs with and without cached body features: may a student run it in the page?

    .venv/bin/python -m bench.lr_finder_cost [--per-class 20] [--size 64] [--repeat 3] [--threads 1]

On generated Pets-like images (core.data.synthetic), mobilenet_v2 (offline ImageNet weights), stage 1
fast (`Fast: cached body features`). Measured side by side in one run, on one data folder:
  * uncached: core.train.lr_finder.find_lr on a fresh feature folder (extracts the features, then lr_find),
  * cached: the same call again, the features now on disk (what a student's click costs),
  * extraction alone (core.train.learners.extract_features into a fresh folder), for scale.
Prints wall and CPU seconds of each (median of --repeat) and the ratios; no assertion, no network.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=20, help="images per class (6 classes)")
    parser.add_argument("--size", type=int, default=64, help="image size the model sees (px)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: what one tab's script run gets)")
    args = parser.parse_args()

    import os

    import torch

    from core.nets.models import THREADS_ENV

    os.environ[THREADS_ENV] = str(args.threads)  # pick_device keeps it
    torch.set_num_threads(args.threads)

    from core.data.datasets import DatasetSpec, scan_dataset
    from core.data.synthetic import make_pets_like
    from core.nets.models import prepare_torch_home
    from core.store.records import RunConfig, StageConfig
    from core.train import learners, lr_finder

    work = Path(tempfile.mkdtemp(prefix="lr-finder-cost-"))
    try:
        prepare_torch_home()
        root = make_pets_like(work / "images", n_per_class=args.per_class)
        scan = scan_dataset(DatasetSpec(name="bench", kind="folder", root=str(root)))
        config = RunConfig(dataset=scan.fingerprint, img_size=args.size, bs=16, seed=42,
                           stages=(StageConfig(epochs=1, lr_max=3e-3, fast=True),))  # fmt: skip
        runs_dir = work / "runs"
        lr_finder.find_lr(config, scan, runs_dir, work / "warm", num_it=100)  # imports and first-use costs, untimed
        rows: dict[str, list[tuple[float, float]]] = {"uncached": [], "cached": [], "extract": []}
        for i in range(args.repeat):
            features = work / f"features{i}"
            rows["uncached"].append(timed(lambda f=features: lr_finder.find_lr(config, scan, runs_dir, f)))
            assert lr_finder.cheap(config, features)
            rows["cached"].append(timed(lambda f=features: lr_finder.find_lr(config, scan, runs_dir, f)))
            fresh = work / f"extract{i}"
            rows["extract"].append(timed(lambda f=fresh: learners.extract_features(config, scan, f)))
        med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in rows.items()}
        print(f"{scan.n_images} images ({len(scan.classes)} classes), mobilenet_v2 at {args.size} px, "
              f"torch threads {torch.get_num_threads()}, median of {args.repeat}")  # fmt: skip
        for name, (wall, cpu) in med.items():
            print(f"  {name:9s} wall {wall:6.2f} s   CPU {cpu:6.2f} s")
        print(f"  cached / uncached wall: {med['cached'][0] / med['uncached'][0]:.2f}")
        print(f"  extraction share of the uncached finder: {med['extract'][0] / med['uncached'][0]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
