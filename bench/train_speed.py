"""Frozen training: fastai's fit_one_cycle on images vs the cached-features path, side by side in one run.

    .venv/bin/python bench/train_speed.py [--quick]

Part 1 uses generated Pets-like images (core.synthetic); part 2 a class-balanced subset of
Fashion-MNIST from Debian's `dataset-fashion-mnist` (skipped with a line when it is absent).
Both paths use the same config: mobilenet_v2 (offline ImageNet weights), same size, bs, seed,
epochs and lr_max; the only difference is `fast=True`. Prints per-epoch time ratio (after
extraction), extraction cost against one fastai frozen epoch, and both error rates.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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


def compare(name: str, scan, img_size: int, epochs: int, lr: float, bs: int, base: Path) -> dict:
    """Train the same frozen config both ways and print the comparison."""
    from core import training
    from core.runs import RunConfig, StageConfig

    rows = {}
    contenders = (
        ("fastai fit_one_cycle (frozen)", False, True),
        ("cached features", True, True),
        ("fastai, train_bn=False", False, False),  # BatchNorm weights frozen too; still batch statistics
    )
    for label, fast, train_bn in contenders:
        config = RunConfig(dataset=scan.fingerprint, arch="mobilenet_v2", img_size=img_size, bs=bs, seed=0,
                           train_bn=train_bn, stages=(StageConfig(epochs=epochs, lr_max=lr, fast=fast),))  # fmt: skip
        start = time.perf_counter()
        result = training.train_run(config, scan, base / "runs", base / "features")
        total = time.perf_counter() - start
        record = result.run.record
        per_epoch = [e.seconds for e in record.epochs]
        rows[label] = {
            "epoch_s": float(np.median(per_epoch)),
            "extract_s": record.timings.get("stage0_extract", 0.0),
            "total_s": total,
            "error": record.error_rate,
        }
    slow, fast = rows["fastai fit_one_cycle (frozen)"], rows["cached features"]
    n_train = int((~scan.items["is_valid"]).sum())
    print(f"\n== {name}: {n_train} train / {int(scan.items['is_valid'].sum())} valid images, "
          f"{len(scan.classes)} classes, mobilenet_v2 @ {img_size}px, bs {bs}, {epochs} epochs, lr_max {lr:g}")  # fmt: skip
    print(f"{'path':32s} {'s/epoch':>9s} {'extract s':>10s} {'total s':>8s} {'error':>7s}")
    for label, r in rows.items():
        print(f"{label:32s} {r['epoch_s']:9.3f} {r['extract_s']:10.2f} {r['total_s']:8.1f} {r['error']:7.2%}")
    speedup, extract = slow["epoch_s"] / fast["epoch_s"], fast["extract_s"] / slow["epoch_s"]
    print(f"per-epoch speed-up (after extraction): {speedup:.0f}x (goal >= 100x) {'ok' if speedup >= 100 else 'UNDER'}")
    print(f"extraction / one fastai frozen epoch:  {extract:.2f}x (goal <= 0.5x) {'ok' if extract <= 0.5 else 'OVER'}")
    print(f"error-rate difference (cached - fastai): {100 * (fast['error'] - slow['error']):+.1f} points "
          "(cached path: body BatchNorm frozen; fastai: train_bn=True)")  # fmt: skip
    frozen_bn = rows["fastai, train_bn=False"]
    print(f"error-rate difference (cached - fastai with train_bn=False): "
          f"{100 * (fast['error'] - frozen_bn['error']):+.1f} points (BatchNorm weights frozen in both; "
          "fastai still normalises with batch statistics in train mode)")  # fmt: skip
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
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="petlab-bench-"))
    os.environ["PETLAB_DATA"] = str(base)
    os.environ.pop("TORCH_HOME", None)

    import torch

    from core.datasets import DatasetSpec, scan_dataset
    from core.synthetic import make_pets_like

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device: "
          f"{'cuda' if torch.cuda.is_available() else 'cpu'}; data folder {base}")  # fmt: skip
    n = 12 if args.quick else 50
    images = make_pets_like(base / "pets-like", n_per_class=n, size=(128, 112), seed=0)
    scan = scan_dataset(DatasetSpec(name="pets-like", kind="folder", root=str(images)))
    compare("generated Pets-like", scan, img_size=96, epochs=3, lr=3e-3, bs=16, base=base)

    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        print("\n== Fashion-MNIST: skipped (apt-get install dataset-fashion-mnist to run this part)")
        return
    folder = write_fashion(base / "fashion", per_class=8 if args.quick else 40)
    spec = DatasetSpec(name="fashion-mnist", kind="folder", root=str(folder), pattern=r"^(.+)_\d+\.png$")
    compare("Fashion-MNIST (real images, Debian dataset-fashion-mnist)", scan_dataset(spec),
            img_size=64, epochs=3, lr=3e-3, bs=16, base=base)  # fmt: skip


if __name__ == "__main__":
    main()
