"""The lesson both ways: stage 1 frozen with fastai's fit_one_cycle on images or on cached features, then stage 2.

    .venv/bin/python -m bench.train_speed [--quick] [--threads N]

Part 1 uses generated Pets-like images (core.data.synthetic); part 2 a class-balanced subset of
Fashion-MNIST from Debian's `dataset-fashion-mnist` (skipped with a line when it is absent).
Both stage-1 paths use the same config: mobilenet_v2 (offline ImageNet weights), same size, bs,
seed, epochs and lr_max; the only difference is `fast=True`. After each, stage 2 unfrozen with the
lesson's slice(1e-6, 1e-4) and with the lesson's mistake (1e-3 for every layer group). Prints the
per-epoch time ratio (after extraction), the extraction cost against one fastai frozen epoch, the
error after each stage and the loss of stage 2's first batch.
"""

from __future__ import annotations

import argparse
import gzip
import os
import tempfile
import time
from pathlib import Path

import numpy as np

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = [
    "T-shirt_top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle_boot",
]


LESSON = "slice(1e-6, 1e-4)"
MISTAKE = "1e-3 everywhere"


def first_batch_loss(events: list, stage: int) -> float:
    """The loss of the first training batch of a stage (the Live callback always reports it)."""
    from core.store.records import EventKind

    return next(e.loss for e in events if e.kind == EventKind.BATCH and e.stage == stage)


def compare(name: str, scan, img_size: int, epochs: int, lr: float, bs: int, base: Path, epochs2: int) -> dict:
    """Frozen stage 1 both ways (fastai on images, cached features), then stage 2 after each: the lesson and its mistake."""
    from dataclasses import replace

    from core.store.records import RunConfig, StageConfig
    from core.train import training

    stage2 = {
        LESSON: StageConfig(epochs=epochs2, lr_max=1e-4, lr_min=1e-6, unfreeze=True),
        MISTAKE: StageConfig(epochs=epochs2, lr_max=1e-3, unfreeze=True),
    }
    rows = {}
    for label, fast in (("fastai fit_one_cycle (frozen)", False), ("cached features", True)):
        stage1 = StageConfig(epochs=epochs, lr_max=lr, fast=fast)
        config = RunConfig(dataset=scan.fingerprint, arch="mobilenet_v2", img_size=img_size, bs=bs, seed=0,
                           stages=(stage1,))  # fmt: skip
        start = time.perf_counter()
        record = training.train_run(config, scan, base / "runs", base / "features").run.record
        row = {
            "epoch_s": float(np.median([e.seconds for e in record.epochs])),
            "extract_s": record.timings.get("stage0_extract", 0.0),
            "total_s": time.perf_counter() - start,
            "error": record.error_rate,
            "valid_loss": record.epochs[-1].valid_loss,
        }
        for what, stage in stage2.items():
            events: list[dict] = []
            record2 = training.train_run(replace(config, stages=(stage1, stage)), scan, base / "runs",
                                         base / "features", on_event=events.append).run.record  # fmt: skip
            row[what] = {"error": record2.error_rate, "first_loss": first_batch_loss(events, 1)}
        rows[label] = row
    slow, fast = rows["fastai fit_one_cycle (frozen)"], rows["cached features"]
    n_train = int((~scan.items["is_valid"]).sum())
    print(f"\n== {name}: {n_train} train / {int(scan.items['is_valid'].sum())} valid images, "
          f"{len(scan.classes)} classes, mobilenet_v2 @ {img_size}px, bs {bs}; stage 1: {epochs} epochs frozen "
          f"at lr_max {lr:g}; stage 2: {epochs2} epochs unfrozen")  # fmt: skip
    print(f"{'stage 1 path':30s} {'s/epoch':>8s} {'extract s':>9s} {'stage 1':>8s} {'(valid loss)':>12s}  "
          f"{'stage 2 ' + LESSON:>26s} {'(1st batch loss)':>16s}  {'stage 2 ' + MISTAKE:>24s}")  # fmt: skip
    for label, r in rows.items():
        lesson, mistake = r[LESSON], r[MISTAKE]
        print(f"{label:30s} {r['epoch_s']:8.3f} {r['extract_s']:9.2f} {r['error']:8.2%} {r['valid_loss']:12.3f}  "
              f"{lesson['error']:26.2%} {lesson['first_loss']:16.3f}  {mistake['error']:24.2%}")  # fmt: skip
    speedup, extract = slow["epoch_s"] / fast["epoch_s"], fast["extract_s"] / slow["epoch_s"]
    print(f"per-epoch speed-up (after extraction): {speedup:.0f}x (goal >= 100x) {'ok' if speedup >= 100 else 'UNDER'}")
    print(f"extraction (with BatchNorm adaptation) / one fastai frozen epoch: {extract:.2f}x (goal <= 0.5x) "
          f"{'ok' if extract <= 0.5 else 'OVER'}")  # fmt: skip
    for label, r in rows.items():
        change = 100 * (r[LESSON]["error"] - r["error"])
        verdict = "improves or holds" if change <= 2 else "WORSE"
        print(f"stage 2 with the lesson's slice after {label}: {change:+.1f} points ({verdict}); "
              f"the mistake: {100 * (r[MISTAKE]['error'] - r['error']):+.1f} points")  # fmt: skip
    return rows


def read_idx(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read gzipped IDX files: (N, 28, 28) uint8 images and (N,) labels."""
    with gzip.open(images) as fh:
        data = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(labels) as fh:
        targets = np.frombuffer(fh.read(), np.uint8, offset=8)
    return data, targets


def write_fashion(root: Path, per_class: int, seed: int = 0) -> Path:
    """A class-balanced subset of Fashion-MNIST as a Pets-style folder: Ankle_boot_123.png."""
    from PIL import Image

    images, targets = read_idx(FASHION_DIR / "train-images-idx3-ubyte.gz", FASHION_DIR / "train-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for c, name in enumerate(FASHION_CLASSES):
        for k, i in enumerate(rng.choice(np.nonzero(targets == c)[0], per_class, replace=False)):
            Image.fromarray(images[i], "L").save(root / f"{name}_{k}.png")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data for a smoke run")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: one per core); 1 is steadier when shared"
    )
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="petlab-bench-"))
    os.environ["PETLAB_DATA"] = str(base)
    os.environ.pop("TORCH_HOME", None)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
        torch.set_num_threads = lambda n: None  # training's pick_device() would set one per core again

    from core.data.datasets import DatasetSpec, scan_dataset
    from core.data.synthetic import make_pets_like

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device: "
          f"{'cuda' if torch.cuda.is_available() else 'cpu'}; data folder {base}")  # fmt: skip
    n = 12 if args.quick else 50
    images = make_pets_like(base / "pets-like", n_per_class=n, size=(128, 112), seed=0)
    scan = scan_dataset(DatasetSpec(name="pets-like", kind="folder", root=str(images)))
    compare("generated Pets-like", scan, img_size=96, epochs=3, lr=3e-3, bs=16, base=base, epochs2=2)

    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        print("\n== Fashion-MNIST: skipped (apt-get install dataset-fashion-mnist to run this part)")
        return
    folder = write_fashion(base / "fashion", per_class=20 if args.quick else 40)
    spec = DatasetSpec(name="fashion-mnist", kind="folder", root=str(folder), pattern=r"^(.+)_\d+\.png$")
    compare("Fashion-MNIST (real images, Debian dataset-fashion-mnist)", scan_dataset(spec),
            img_size=64, epochs=3, lr=3e-3, bs=16, base=base, epochs2=2)  # fmt: skip


if __name__ == "__main__":
    main()
