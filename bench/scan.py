"""Scan benchmark: header-only scan of a Pets-shaped tree vs a naive scan that decodes every image.

    .venv/bin/python -m bench.scan [--images 7400]

Generates (once, cached under /tmp) 7,400 JPEGs named like Oxford-IIIT Pet (37 breeds, 500×375
typical size), then times, side by side in one run:
  * Pet Lab's `scan_dataset` (labels by regex, sizes from headers, truncation check, split);
  * a naive scan that opens and fully decodes every image to get its size and catch corrupt files.
Prints both times and the ratio. Goal: under 3 s and at least 10× faster than the naive scan.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from core.data.datasets import list_image_files, scan_dataset, split_valid
from core.data.labels import PETS_PATTERN, label_files
from core.data.pets import pets_spec

CATS = "Abyssinian Bengal Birman Bombay British_Shorthair Egyptian_Mau Maine_Coon Persian Ragdoll Russian_Blue Siamese Sphynx"
DOGS = (
    "american_bulldog american_pit_bull_terrier basset_hound beagle boxer chihuahua english_cocker_spaniel "
    "english_setter german_shorthaired great_pyrenees havanese japanese_chin keeshond leonberger miniature_pinscher "
    "newfoundland pomeranian pug saint_bernard samoyed scottish_terrier shiba_inu staffordshire_bull_terrier "
    "wheaten_terrier yorkshire_terrier"
)
BREEDS = CATS.split() + DOGS.split()


def make_tree(root: Path, n_images: int) -> Path:
    """Pets-shaped flat folder of real JPEGs with varied sizes around 500×375 (made once)."""
    images = root / "images"
    marker = root / f".done-{n_images}"
    if marker.exists():
        return images
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, size=(400, 520, 3), dtype=np.uint8)
    for i in range(n_images):
        breed = BREEDS[i % len(BREEDS)]
        w, h = int(rng.integers(300, 520)), int(rng.integers(240, 400))
        Image.fromarray(base[:h, :w]).save(images / f"{breed}_{i // len(BREEDS) + 1}.jpg", quality=85)
    marker.touch()
    return images


def naive_scan(root: Path) -> tuple[int, int]:
    """What a scan without care does: decode every image fully, then label and split."""
    rel = list_image_files(root)
    labels = label_files(rel, PETS_PATTERN)
    sizes, bad = [], 0
    for path in labels.labels:
        try:
            with Image.open(root / path) as img:
                img.load()  # full decode
                sizes.append(img.convert("RGB").size)
        except Exception:
            bad += 1
    split_valid(len(sizes))
    return len(sizes), bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=7400)
    parser.add_argument("--root", type=Path, default=Path("/tmp/petlab-bench-scan"))
    args = parser.parse_args()
    images = make_tree(args.root, args.images)
    spec = pets_spec(images)
    # warm the OS file cache equally for both contenders
    scan_dataset(spec)

    t0 = time.perf_counter()
    result = scan_dataset(spec)
    fast = time.perf_counter() - t0

    t0 = time.perf_counter()
    n_naive, _ = naive_scan(images)
    naive = time.perf_counter() - t0

    assert n_naive == result.n_images
    print(f"images: {result.n_images}, classes: {len(result.classes)}, corrupt: {len(result.corrupt)}")
    print(f"Pet Lab scan (headers only): {fast:.2f} s")
    print(f"naive scan (full decode):    {naive:.2f} s")
    print(f"ratio: {naive / fast:.1f}x faster (goal >= 10x, under 3 s)")


if __name__ == "__main__":
    main()
