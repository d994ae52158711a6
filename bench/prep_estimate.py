"""How long `make prepare` takes for the whole lesson, extrapolated from measured per-image rates.

    .venv/bin/python -m bench.prep_estimate [--images 64]

On a small generated Pets-shaped set (500×375 JPEGs, the lesson's aug_transforms) it times, through
the real code paths (core.train.training.train_run, core.train.features, core.inside.patches), for resnet34 at 224 px
and resnet50 at 299 px: one frozen and one unfrozen fastai epoch, the feature extraction of the
Fast toggle (2 views), a top-patch index pass, and one pass of fastai's data pipeline alone (decode,
crop, augment; num_workers=0, as the app runs it). Random-init weights: ImageNet weights are not
available offline and the compute is the same. It then scales each rate to the lesson on the real
Pets set (5,912 train + 1,478 valid images): resnet34 4 frozen + 1 (mistake) + 2 unfrozen epochs,
resnet50 8 frozen + 3 unfrozen, features for both, patch indexes of every stage of 2 ImageNet
models and 5 runs over 300 images. The GPU figure is an estimate, not a measurement: with
num_workers=0 an epoch on a GPU is bounded by the data pipeline measured here on one CPU core.
The machine is shared with other work: rates are indicative.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

PETS_TRAIN, PETS_VALID = 5912, 1478
LESSON = {  # arch: (img_size, frozen epochs, unfrozen epochs in all runs)
    "resnet34": (224, 4, 1 + 2),
    "resnet50": (299, 8, 3),
}
PATCH_MODELS = {"resnet34": 1 + 3, "resnet50": 1 + 2}  # ImageNet model + the lesson's runs


class Clock:
    """Wall and process CPU seconds of a block (CPU time is what a busy shared machine cannot inflate)."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def measure(arch: str, size: int, images: Path, work: Path) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds per image for each kind of pass, measured once on the generated set."""
    import torch

    from core.data.datasets import scan_dataset
    from core.data.pets import pets_spec
    from core.inside import patches
    from core.nets.models import create_model, pick_device
    from core.store.records import RunConfig, StageConfig
    from core.train import features, learners, training

    scan = scan_dataset(pets_spec(images))
    n_valid = int(scan.items["is_valid"].sum())
    n_train = len(scan.items) - n_valid
    bs = 16
    config = RunConfig(
        dataset=scan.fingerprint,
        arch=arch,
        pretrained=False,
        img_size=size,
        augment=True,
        bs=bs,
        stages=(StageConfig(1, 1e-3), StageConfig(1, 1e-4, lr_min=1e-6, unfreeze=True)),
    )
    device = pick_device()
    dls = learners.make_dls(scan.items, config, device)
    with Clock() as data:
        seen = sum(len(xb) for xb, _ in dls.train)
    used = (n_train // bs) * bs + n_valid  # fastai drops the ragged last training batch
    frozen_cfg = replace(config, stages=config.stages[:1])
    with Clock() as frozen:
        training.train_run(frozen_cfg, scan, work / "runs", work / "features")
    with Clock() as unfrozen:
        training.train_run(config, scan, work / "runs", work / "features")  # continues from the stored frozen run
    model = create_model(arch, len(scan.classes), pretrained=False)
    spec = features.FeatureSpec(scan.fingerprint, arch, False, size, True, 2, 42, bs)
    with Clock() as extract:
        features.cached_features(work / "features", spec, model, dls, device)
    paths = scan.items["path"].astype(str).tolist()[:16]
    with Clock() as patch, torch.no_grad():
        patches.build_patch_index(model.eval(), "0.7", paths, size=224)  # layer4: the deepest, slowest stage
    per = {"data": (data, seen), "frozen": (frozen, used), "unfrozen": (unfrozen, used)}
    per |= {"extract": (extract, 2 * n_train + n_valid), "patch": (patch, len(paths))}
    return {name: (clock.wall / n, clock.cpu / n) for name, (clock, n) in per.items()}


def lesson_seconds(arch: str, rate: dict[str, float]) -> tuple[float, float, float]:
    """(training, features, patch indexes) seconds of the lesson on Pets at these per-image rates."""
    _, n_frozen, n_unfrozen = LESSON[arch]
    train = (PETS_TRAIN + PETS_VALID) * (n_frozen * rate["frozen"] + n_unfrozen * rate["unfrozen"])
    extract = (2 * PETS_TRAIN + PETS_VALID) * rate["extract"]
    index = PATCH_MODELS[arch] * 5 * 300 * rate["patch"]  # 5 stages, each at most a layer4 pass
    return train, extract, index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="petlab-prep-") as tmp:
        work = Path(tmp)
        os.environ["PETLAB_DATA"] = str(work)
        from core.data.synthetic import make_pets_like

        classes = ("Abyssinian", "Bengal", "Persian", "beagle", "boxer", "pug", "samoyed", "shiba_inu")
        per_class = max(2, args.images // len(classes))
        images = make_pets_like(work / "images", n_per_class=per_class, classes=classes, size=(500, 375))
        cores = os.cpu_count() or 1
        totals = {"wall": 0.0, "quiet": 0.0, "gpu": 0.0}
        per_epoch = PETS_TRAIN + PETS_VALID
        print(f"seconds per image, wall (CPU time), {per_class * len(classes)} images, {cores} shared cores:")
        for arch, (size, n_frozen, n_unfrozen) in LESSON.items():
            rate = measure(arch, size, images, work / arch)
            print(f"  {arch} {size}px: " + ", ".join(f"{k} {w:.3f} ({c:.3f})" for k, (w, c) in rate.items()))

            wall = lesson_seconds(arch, {k: w for k, (w, _) in rate.items()})
            # CPU seconds spread over every core of a quiet machine (a lower bound; 1 core: × cores)
            quiet = tuple(v / cores for v in lesson_seconds(arch, {k: c for k, (_, c) in rate.items()}))
            # one process decodes and crops every image (num_workers=0): its CPU time, not the busy wall time
            gpu = (per_epoch * (n_frozen + n_unfrozen) + 2 * PETS_TRAIN + PETS_VALID) * rate["data"][1]
            for name, (train, extract, index) in (("as measured (busy)", wall), ("quiet machine", quiet)):
                print(
                    f"    lesson on Pets, {name}: training {train / 3600:.1f} h + features {extract / 3600:.1f} h "
                    f"+ patch indexes {index / 60:.0f} min = {sum((train, extract, index)) / 3600:.1f} h"
                )
            print(f"    GPU estimate (data pipeline bound, num_workers=0): {gpu / 60:.0f} min")
            totals["wall"] += sum(wall)
            totals["quiet"] += sum(quiet)
            totals["gpu"] += gpu
        print(
            f"whole lesson (resnet34 + resnet50) on this CPU: {totals['wall'] / 3600:.1f} h as measured, "
            f"{totals['quiet'] / 3600:.1f} h from CPU time on a quiet {cores}-core machine; "
            f"GPU about {totals['gpu'] / 60:.0f} min + downloads (estimate, not measured)"
        )


if __name__ == "__main__":
    main()
