"""The lesson's whole recipe, plain fastai vs Pet Lab's path, side by side in one run.

    .venv/bin/python -m bench.lesson_time [--images 370] [--size 224] [--bs 64] [--arch mobilenet_v2]
                                          [--dataset pets-like|fashion] [--precision auto|fp32|bf16] [--threads N]

The course's recipe (fastbook ch. 1/5): stage 1 `fit_one_cycle(4)` with the body frozen, then
`unfreeze()` and stage 2 `fit_one_cycle(2, lr_max=slice(1e-6, 1e-4))`, at 224 px, bs 64, item
transform Resize(224) (no aug_transforms, so both paths see the same images).
  * plain fastai: `vision_learner(dls, arch)` on the same DataLoaders, fit_one_cycle frozen,
    unfreeze, fit_one_cycle;
  * Pet Lab: `core.train.training.train_run` with stage 1 on cached features (extracted once through
    core.nets.inference's fast path, head trained by fastai over index-batched loaders) and stage 2
    unfrozen with channels_last (and bf16 autocast where core.nets.inference.precision_for says so).
Both start from the same seed and the same split. Data: a generated Pets-sized set (37 classes, 12
cat + 25 dog breed names; `--images` scales it down: the full set is 7,390 images) or Fashion-MNIST
(real images, Debian's dataset-fashion-mnist). Prints the wall time of each stage, the error after
each, the ratios against the goal (whole recipe ≤ 1/3 of plain fastai's time, error within 1 point),
and seconds per image that extrapolate to the full Pets set.

mobilenet_v2 by default: it is the only architecture with offline ImageNet weights here, and the
lesson is transfer learning (a frozen random-init body would make stage 1 meaningless).
`--arch resnet34` runs the course's network with random init (pretrained=False) in both paths.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

PETS_TRAIN, PETS_ALL = 5912, 7390  # Oxford-IIIT Pet's images/ folder and its 80 % training split
CATS = ("Abyssinian", "Bengal", "Birman", "Bombay", "British_Shorthair", "Egyptian_Mau", "Maine_Coon",
        "Persian", "Ragdoll", "Russian_Blue", "Siamese", "Sphynx")  # fmt: skip
DOGS = ("american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle", "boxer", "chihuahua",
        "english_cocker_spaniel", "english_setter", "german_shorthaired", "great_pyrenees", "havanese",
        "japanese_chin", "keeshond", "leonberger", "miniature_pinscher", "newfoundland", "pomeranian", "pug",
        "saint_bernard", "samoyed", "scottish_terrier", "shiba_inu", "staffordshire_bull_terrier",
        "wheaten_terrier", "yorkshire_terrier")  # fmt: skip
LR1, LR2 = 1e-3, (1e-6, 1e-4)  # fastai's default lr_max for stage 1; the lesson's slice for stage 2


def make_data(base: Path, dataset: str, images: int):
    from core.data.datasets import DatasetSpec, scan_dataset

    if dataset == "fashion":
        from bench.train_speed import write_fashion

        folder = write_fashion(base / "fashion", per_class=max(2, images // 10))
        spec = DatasetSpec(name="fashion-mnist", kind="folder", root=str(folder), pattern=r"^(.+)_\d+\.png$")
        return scan_dataset(spec)
    from core.data.synthetic import make_pets_like

    classes = CATS + DOGS  # 37
    folder = make_pets_like(base / "pets-like", n_per_class=max(2, images // len(classes)), classes=classes,
                            size=(320, 260), seed=0)  # fmt: skip
    return scan_dataset(DatasetSpec(name="pets-like", kind="folder", root=str(folder)))


def epoch_timer(times: list[float]):
    """A fastai callback appending each epoch's wall time (training and validation) to times."""
    from fastai.callback.core import Callback

    class EpochTimer(Callback):
        def before_epoch(self) -> None:
            self.start = time.perf_counter()

        def after_epoch(self) -> None:
            times.append(time.perf_counter() - self.start)

    return EpochTimer()


def plain_fastai(scan, config, arch: str, pretrained: bool):
    """The notebook, one stage per step: vision_learner; fit_one_cycle(4) frozen; unfreeze, fit_one_cycle(2, slice)."""
    import torchvision
    from fastai.callback.progress import ProgressCallback
    from fastai.metrics import error_rate
    from fastai.torch_core import set_seed
    from fastai.vision.learner import vision_learner

    from core.nets.models import prepare_torch_home, register_fastai_meta
    from core.train.learners import make_dls

    register_fastai_meta()
    prepare_torch_home()
    start = time.perf_counter()
    dls = make_dls(scan.items, config)
    set_seed(config.seed)
    learn = vision_learner(dls, getattr(torchvision.models, arch), pretrained=pretrained, metrics=error_rate)
    learn.remove_cbs(ProgressCallback)
    learn.logger = lambda *a, **k: None
    epoch_s: list[float] = []
    set_seed(config.seed)
    learn.fit_one_cycle(config.stages[0].epochs, lr_max=LR1, cbs=[epoch_timer(epoch_s)])
    yield {  # stage 1 with set-up, as Pet Lab's
        "stage1": time.perf_counter() - start,
        "err1": float(learn.recorder.values[-1][2]),
        "epoch1": statistics.median(epoch_s),
    }
    t = time.perf_counter()
    learn.unfreeze()
    set_seed(config.seed + 1)
    learn.fit_one_cycle(config.stages[1].epochs, lr_max=slice(*LR2))
    yield {"stage2": time.perf_counter() - t, "err2": float(learn.recorder.values[-1][2])}


def pet_lab(scan, config, base: Path):
    """core.train.training.train_run, one stage per step: stage 1 on cached features, then stage 2 continuing it."""
    from dataclasses import replace

    from core.train import training

    runs_dir, features_dir = base / "runs", base / "features"
    t = time.perf_counter()
    one = training.train_run(replace(config, stages=config.stages[:1]), scan, runs_dir, features_dir).run.record
    yield {
        "stage1": time.perf_counter() - t,  # with set-up, as fastai's
        "extract": one.timings.get("stage0_extract", 0.0),
        "err1": one.epochs[-1].error_rate,
        "epoch1": statistics.median(e.seconds for e in one.epochs),  # one head epoch on cached features
    }
    t = time.perf_counter()
    two = training.train_run(config, scan, runs_dir, features_dir).run.record
    yield {"stage2": time.perf_counter() - t, "err2": two.epochs[-1].error_rate, "precision": two.precision}


def warm_up(scan, config) -> None:
    """Import fastai/torchvision and build DataLoaders and a model once, untimed: neither path pays first-use costs."""
    from core.nets.models import create_model
    from core.train.learners import make_dls

    make_dls(scan.items, config).one_batch()
    create_model(config.arch, 2, pretrained=config.pretrained)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=PETS_ALL, help="images in the generated set (Pets: 7,390)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--bs", type=int, default=64)
    parser.add_argument("--arch", default="mobilenet_v2", choices=["mobilenet_v2", "resnet34", "resnet18"])
    parser.add_argument("--dataset", default="pets-like", choices=["pets-like", "fashion"])
    parser.add_argument("--precision", default="auto", help="Pet Lab's precision: auto (the rule), fp32, bf16")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: one per core); 1 is steadier when shared"
    )
    parser.add_argument("--skip-fastai", action="store_true", help="only Pet Lab's path (e.g. to compare precisions)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="petlab-lesson-"))
    os.environ["PETLAB_DATA"] = str(base)
    os.environ.pop("TORCH_HOME", None)
    os.environ["PETLAB_PRECISION"] = args.precision

    import torch

    from core.nets.models import pick_device
    from core.store.records import RunConfig, StageConfig

    device = pick_device()
    if args.threads:
        torch.set_num_threads(args.threads)
        torch.set_num_threads = lambda n: None  # training's pick_device() would set one per core again
    scan = make_data(base, args.dataset, args.images)
    n_train, n_valid = int((~scan.items["is_valid"]).sum()), int(scan.items["is_valid"].sum())
    pretrained = args.arch == "mobilenet_v2"
    config = RunConfig(dataset=scan.fingerprint, arch=args.arch, pretrained=pretrained, img_size=args.size,
                       bs=args.bs, seed=42, stages=(StageConfig(epochs=4, lr_max=LR1, fast=True),
                       StageConfig(epochs=2, lr_max=LR2[1], lr_min=LR2[0], unfreeze=True)))  # fmt: skip
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}; "
          f"{args.dataset}: {n_train} train / {n_valid} valid, {len(scan.classes)} classes; "
          f"{args.arch} ({'ImageNet weights' if pretrained else 'random init'}) @ {args.size}px, bs {args.bs}")  # fmt: skip
    warm_up(scan, config)
    plain_cfg = RunConfig(**{**config.__dict__, "stages": (StageConfig(epochs=4, lr_max=LR1), config.stages[1])})
    # stages interleaved (ours, fastai, ours, fastai): a shared machine's load drifts, and this spreads it evenly
    steps = [pet_lab(scan, config, base)] + (
        [] if args.skip_fastai else [plain_fastai(scan, plain_cfg, args.arch, pretrained)]
    )
    results = [{} for _ in steps]
    for _stage in range(2):
        for step, result in zip(steps, results, strict=True):
            result.update(next(step))
    ours, plain = results[0], (results[1] if len(results) > 1 else None)
    print(f"Pet Lab precision: {ours['precision']}")

    n_all = n_train + n_valid
    print(f"\n{'path':34s} {'stage 1 s':>10s} {'stage 2 s':>10s} {'total s':>9s} {'err 1':>7s} {'err 2':>7s}")
    rows = [("Pet Lab (cached stage 1)", ours)] + ([("plain fastai", plain)] if plain else [])
    for label, r in rows:
        print(f"{label:34s} {r['stage1']:10.1f} {r['stage2']:10.1f} {r['stage1'] + r['stage2']:9.1f} "
              f"{r['err1']:7.2%} {r['err2']:7.2%}")  # fmt: skip
    print(f"Pet Lab stage 1: extraction {ours['extract']:.1f} s of {ours['stage1']:.1f} s")
    print(f"\nper image of the set, extrapolated to the full Pets set ({PETS_ALL} images):")
    for label, r in rows:
        s1, s2 = r["stage1"] / n_all, r["stage2"] / n_all
        print(f"  {label:32s} stage 1 {s1 * 1000:7.1f} ms/img -> {s1 * PETS_ALL / 60:6.1f} min; "
              f"stage 2 {s2 * 1000:7.1f} ms/img -> {s2 * PETS_ALL / 60:6.1f} min")  # fmt: skip
    if plain:
        total_ours, total_plain = ours["stage1"] + ours["stage2"], plain["stage1"] + plain["stage2"]
        ratio = total_ours / total_plain
        gap = 100 * (ours["err2"] - plain["err2"])
        print(f"\nstage 1: Pet Lab / fastai = {ours['stage1'] / plain['stage1']:.2f}x; "
              f"stage 2: {ours['stage2'] / plain['stage2']:.2f}x")  # fmt: skip
        head, extract = plain["epoch1"] / ours["epoch1"], ours["extract"] / plain["epoch1"]
        print(f"head epoch on cached features vs fastai's frozen epoch: {head:.0f}x faster (goal >= 100x) "
              f"{'ok' if head >= 100 else 'UNDER'}")  # fmt: skip
        print(f"feature extraction / one fastai frozen epoch = {extract:.2f}x (goal <= 0.5x) "
              f"{'ok' if extract <= 0.5 else 'OVER'}")  # fmt: skip
        print(f"whole recipe: Pet Lab / fastai = {ratio:.2f}x (goal <= 0.33x) {'ok' if ratio <= 1 / 3 else 'OVER'}")
        print(f"final error: Pet Lab - fastai = {gap:+.1f} points (goal within 1) {'ok' if abs(gap) <= 1 else 'OVER'}")


if __name__ == "__main__":
    main()
