"""An honest "not sure": does the rule flag real photos that are not clothing, on a Fashion-MNIST run?

    .venv/bin/python -m bench.not_sure [--per-class 60] [--size 224] [--quick]

Trains a run on a class-balanced Fashion-MNIST subset (Debian's `dataset-fashion-mnist`, written as
files like `Ankle_boot_12.png`, as a teacher would have them), then scores three sets with the
Prediction page's own code (`core.predict.prediction.predict` with the run's `core.predict.novelty` reference):
- validation images (the held-out split that places the line),
- Fashion-MNIST *test* images (t10k, never seen by training or calibration),
- real photos that are not clothing: the sample photos shipped in the scikit-image wheel
  (astronaut, chelsea the cat, coffee, rocket, motorcycles, coins, moon, …) and scikit-learn's
  (china.jpg, flower.jpg). The scikit-image wheel is fetched once with
  `pip download --no-deps scikit-image==0.26.0` into a cache folder (PyPI only, no other network);
  scikit-learn's come from the installed package (fastai depends on it) or its wheel likewise.

Prints AUROC (in-distribution vs outside, higher = better separated) for the kNN feature distance,
the energy and the max softmax, the share of each set the page's rule flags, and the share of
outside photos flagged when the line is placed so that 10 % of validation images are flagged.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from bench.train_speed import FASHION_CLASSES, FASHION_DIR, read_idx, write_fashion

SKIMAGE_WHEEL = "scikit-image==0.26.0"
SKLEARN_WHEEL = "scikit-learn==1.9.1"
# every photograph in skimage/data (drawings, charts, silhouettes, chessboards and tiny files left out)
SKIMAGE_PHOTOS = (
    "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png", "coffee.png",
    "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png",
    "motorcycle_left.png", "motorcycle_right.png", "page.png", "retina.jpg", "rocket.jpg", "text.png",
)  # fmt: skip
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")
PHOTO_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "petlab" / "outside-photos"


def _from_wheel(requirement: str, prefix: str, names: tuple[str, ...], dest: Path) -> list[Path]:
    """Files prefix/<name> out of a wheel fetched with `pip download --no-deps` (once; cached in dest)."""
    wanted = [dest / n for n in names]
    if all(p.is_file() for p in wanted):
        return wanted
    wheels = dest / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    requirement, "-d", str(wheels)], check=True)  # fmt: skip
    name = requirement.split("==")[0].replace("-", "_")
    wheel = next(w for w in sorted(wheels.glob("*.whl")) if w.name.lower().startswith(name.lower()))
    with zipfile.ZipFile(wheel) as zf:
        for n in names:
            (dest / n).write_bytes(zf.read(f"{prefix}/{n}"))
    return wanted


def outside_photos(cache: Path = PHOTO_CACHE) -> list[Path]:
    """The scikit-image and scikit-learn sample photos, as files in cache."""
    cache.mkdir(parents=True, exist_ok=True)
    photos = _from_wheel(SKIMAGE_WHEEL, "skimage/data", SKIMAGE_PHOTOS, cache)
    try:
        import sklearn.datasets

        folder = Path(sklearn.datasets.__file__).parent / "images"
        photos += [folder / n for n in SKLEARN_PHOTOS]
    except ImportError:
        photos += _from_wheel(SKLEARN_WHEEL, "sklearn/datasets/images", SKLEARN_PHOTOS, cache)
    return photos


def write_fashion_test(root: Path, per_class: int, seed: int = 1) -> list[tuple[Path, str]]:
    """Fashion-MNIST test-set images (t10k) as PNG files, per_class of each class."""
    from PIL import Image

    images, targets = read_idx(FASHION_DIR / "t10k-images-idx3-ubyte.gz", FASHION_DIR / "t10k-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for c, name in enumerate(FASHION_CLASSES):
        for k, i in enumerate(rng.choice(np.nonzero(targets == c)[0], per_class, replace=False)):
            path = root / f"{name}_test_{k}.png"
            Image.fromarray(images[i], "L").save(path)
            out.append((path, name))
    return out


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(score of an outside image > score of an inside one), ties counted half (Mann-Whitney U)."""
    inside, outside = np.asarray(inside, float), np.asarray(outside, float)
    greater = (outside[:, None] > inside[None, :]).sum()
    ties = (outside[:, None] == inside[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(inside) * len(outside)))


def score(loaded, reference, rule, paths) -> dict[str, np.ndarray]:
    """The page's predict() on each file: kNN distance, energy, 1 - max softmax, flagged by the rule."""
    from core.data.images import load_image_file
    from core.predict import prediction

    rows = [prediction.predict(loaded, load_image_file(Path(p)).image, k=1, rule=rule, reference=reference)
            for p in paths]  # fmt: skip
    return {
        "distance": np.array([r.distance for r in rows]),
        "energy": np.array([r.energy for r in rows]),
        "1 - max softmax": np.array([1 - r.top_prob for r in rows]),
        "flagged": np.array([r.not_sure for r in rows]),
        "distance flagged": np.array([r.distance > rule.max_distance for r in rows]),
        "softmax flagged": np.array([bool(prediction.judge(r.top_prob, r.entropy, None, rule)) for r in rows]),
        "top": [f"{r.top} {r.top_prob:.0%}" for r in rows],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=60, help="Fashion-MNIST images per class (600 = the issue's)")
    parser.add_argument("--size", type=int, default=224, help="image size of the run")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--test-per-class", type=int, default=30, help="t10k images per class")
    parser.add_argument("--quick", action="store_true", help="small smoke run (10 per class, 64 px)")
    args = parser.parse_args()
    if args.quick:
        args.per_class, args.size, args.test_per_class = 10, 64, 5
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        sys.exit("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist (make system-deps)")
    photos = outside_photos()
    base = Path(tempfile.mkdtemp(prefix="petlab-notsure-"))
    os.environ["PETLAB_DATA"] = str(base)
    os.environ.pop("TORCH_HOME", None)

    import torch

    from core.data.datasets import DatasetSpec, scan_dataset
    from core.data.images import load_image_file
    from core.predict import novelty, prediction
    from core.store.records import RunConfig, StageConfig
    from core.store.runs import load_run_model
    from core.train import training

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; data folder {base}")
    folder = write_fashion(base / "fashion", per_class=args.per_class)
    scan = scan_dataset(DatasetSpec(name="fashion-mnist", kind="folder", root=str(folder), pattern=r"^(.+)_\d+\.png$"))
    config = RunConfig(dataset=scan.fingerprint, arch="mobilenet_v2", img_size=args.size, bs=16, seed=0,
                       stages=(StageConfig(epochs=args.epochs, lr_max=3e-3, fast=True),))  # fmt: skip
    t = time.perf_counter()
    run = training.train_run(config, scan, base / "runs", base / "features").run
    print(f"trained {config.title()} in {time.perf_counter() - t:.0f} s: "
          f"error {run.record.error_rate:.1%}")  # fmt: skip
    loaded = load_run_model(run.path)

    items = scan.items
    train = list(zip(items.loc[~items["is_valid"], "path"], items.loc[~items["is_valid"], "label"], strict=True))
    valid = list(zip(items.loc[items["is_valid"], "path"], items.loc[items["is_valid"], "label"], strict=True))
    spec = novelty.NoveltySpec()
    t = time.perf_counter()
    reference = novelty.build_reference(novelty.body_features(loaded.model), loaded.img_size, train, valid, spec,
                                        lambda p: load_image_file(Path(p)).image)  # fmt: skip
    print(f"reference: {reference.describe()}; built in {time.perf_counter() - t:.1f} s")
    rule = prediction.rule_for(reference)

    test = write_fashion_test(base / "fashion-test", args.test_per_class)
    sets = {
        "validation": score(loaded, reference, rule, [p for p, _ in valid]),
        "Fashion test (t10k)": score(loaded, reference, rule, [p for p, _ in test]),
        "outside photos": score(loaded, reference, rule, photos),
    }
    out = sets["outside photos"]
    print(f"\n{'set':22s} {'images':>6s} {'flagged (rule)':>15s} {'flagged (distance only)':>24s}")
    for name, s in sets.items():
        print(f"{name:22s} {len(s['flagged']):6d} {s['flagged'].mean():15.1%} {s['distance flagged'].mean():24.1%}")
    print(f"\nAUROC, in-distribution vs {len(photos)} outside photos:")
    print(f"{'score':18s} {'validation':>11s} {'t10k test':>10s}")
    for key in ("distance", "energy", "1 - max softmax"):
        print(f"{key:18s} {auroc(sets['validation'][key], out[key]):11.3f} "
              f"{auroc(sets['Fashion test (t10k)'][key], out[key]):10.3f}")  # fmt: skip
    # the rule before this one: energy above that of 95 % of 24 training images (seeded sample)
    sample = [p for p, _ in train]
    sample = [sample[i] for i in np.random.default_rng(0).choice(len(sample), min(24, len(sample)), replace=False)]
    energy_line = float(np.quantile(score(loaded, reference, rule, sample)["energy"], 0.95))
    old = {name: (s["energy"] > energy_line) | s["softmax flagged"] for name, s in sets.items()}
    print(f"\nold rule (softmax + energy above {energy_line:.2f}, 95 % of 24 training images): flags "
          + ", ".join(f"{name} {flags.mean():.1%}" for name, flags in old.items()))  # fmt: skip
    line10 = float(np.quantile(sets["validation"]["distance"], 0.90))
    print(f"\nline at 10 % of validation flagged (distance {line10:.3f}): outside photos flagged "
          f"{(out['distance'] > line10).mean():.1%}, t10k test flagged "
          f"{(sets['Fashion test (t10k)']['distance'] > line10).mean():.1%}")  # fmt: skip
    print(f"page's line ({1 - spec.in_rate:.0%} of validation, distance {reference.threshold:.3f}): outside photos "
          f"flagged {out['distance flagged'].mean():.1%} by distance, {out['flagged'].mean():.1%} by the whole rule")  # fmt: skip
    print("\nper photo: prediction, distance, energy, flagged")
    for photo, top, d, e, f in zip(photos, out["top"], out["distance"], out["energy"], out["flagged"], strict=True):
        print(f"  {photo.name:24s} {top:22s} {d:6.3f} {e:7.2f} {'not sure' if f else 'CONFIDENT'}")
    print("\nk (neighbour) sweep, AUROC validation vs outside, distance only:")
    val_feats = novelty.image_features(novelty.body_features(loaded.model),
                                       (load_image_file(Path(p)).image for p, _ in valid), loaded.img_size)  # fmt: skip
    out_feats = novelty.image_features(novelty.body_features(loaded.model),
                                       (load_image_file(p).image for p in photos), loaded.img_size)  # fmt: skip
    for k in (1, 2, 5, 10, 20, 50):
        v = novelty.knn_distance(reference.features, novelty.normalise(val_feats), k)
        o = novelty.knn_distance(reference.features, novelty.normalise(out_feats), k)
        print(f"  k={k:<3d} AUROC {auroc(v, o):.3f}, outside flagged at 5 % validation "
              f"{(o > np.quantile(v, 0.95)).mean():.1%}")  # fmt: skip


if __name__ == "__main__":
    main()
