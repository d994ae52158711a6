"""The lesson walk's results under each precision, side by side: does the lesson still teach what it should?

    .venv/bin/python -m bench.lesson_walk [--per-class 60] [--size 64] [--precisions auto,fp32,bf16]

The browser walk (tests/browser/test_lesson_walk.py) through the pages' own core calls, on a real
600-image Fashion-MNIST folder (Debian's dataset-fashion-mnist, files like `Ankle_boot_12.png`), with
the Training page's defaults (mobilenet_v2, 64 px, bs 16, seed 42, no augmentation):
LR finder on cached features, stage 1 (Fast, 3 epochs) at its valley, stage 2 with the lesson's
slice(1e-6, 1e-4) and the lesson's mistake (1e-3 for every group), 2 epochs each; then the Prediction
page's "not sure" rule for the stage-2 run on photos that are not clothing (the scikit-image and
scikit-learn sample photos, see bench/not_sure.py) and on Fashion-MNIST test images.

Each precision runs as `PETLAB_PRECISION=<p>` in its own data folder (a run's id does not name its
precision). `auto` is what this machine chooses by itself. Prints, per precision: the valley, the
error after each stage, whether stage 2 improves on stage 1 (the lesson's point) and the mistake does
not, the share of outside photos called "not sure", whether the Training page's last epoch and
Interpretation's stored predictions agree, and the seconds each step took. The machine is shared:
times are indicative, compare them only within one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.not_sure import outside_photos, write_fashion_test
from bench.train_speed import FASHION_DIR, write_fashion

SLICE = (1e-6, 1e-4)


def walk(precision: str, folder: Path, base: Path, size: int, photos: list[Path], test: list[Path]) -> dict:
    """One lesson walk with PETLAB_PRECISION=precision in the data folder base; its results."""
    from dataclasses import replace

    from core.data.datasets import DatasetSpec, scan_dataset
    from core.data.images import load_image_file
    from core.nets import inference
    from core.predict import novelty, prediction
    from core.store import runs
    from core.store.records import RunConfig, StageConfig
    from core.store.runs import load_run_model
    from core.train import interpretation, lr_finder, training

    os.environ["PETLAB_PRECISION"] = precision
    os.environ["PETLAB_DATA"] = str(base)
    runs_dir, features_dir = base / "runs", base / "features"
    scan = scan_dataset(DatasetSpec(name="fashion", kind="folder", root=str(folder), pattern=r"^(.+)_\d+\.png$"))
    out: dict = {"precision": inference.precision_for("cpu"), "seconds": {}}

    def timed(name: str, work):
        start = time.perf_counter()
        result = work()
        out["seconds"][name] = time.perf_counter() - start
        return result

    first = StageConfig(epochs=3, lr_max=3e-3, fast=True)
    config = RunConfig(dataset=scan.fingerprint, arch="mobilenet_v2", img_size=size, bs=16, seed=42, stages=(first,))
    found = timed("LR finder (with extraction)", lambda: lr_finder.find_lr(config, scan, runs_dir, features_dir))
    out["valley"] = valley = found.suggestions["valley"]
    stage1 = replace(first, lr_max=float(f"{valley:.1e}"))  # the page's "Use valley" writes it as 2.1e-03
    one = timed("stage 1", lambda: training.train_run(replace(config, stages=(stage1,)), scan, runs_dir, features_dir))
    lesson = StageConfig(epochs=2, lr_max=SLICE[1], lr_min=SLICE[0], unfreeze=True)
    mistake = StageConfig(epochs=2, lr_max=1e-3, unfreeze=True)
    two = timed("stage 2", lambda: training.train_run(replace(config, stages=(stage1, lesson)), scan, runs_dir,
                                                      features_dir))  # fmt: skip
    bad = timed("mistake", lambda: training.train_run(replace(config, stages=(stage1, mistake)), scan, runs_dir,
                                                      features_dir))  # fmt: skip
    out["errors"] = {name: r.run.record.error_rate for name, r in (("stage 1", one), ("stage 2", two),
                                                                   ("mistake", bad))}  # fmt: skip
    agree = []
    for result in (one, two, bad):
        preds = runs.load_preds(result.run.path)
        agree.append(abs(interpretation.error_rate(preds.probs, preds.targets) - result.run.record.error_rate))
    out["pages differ by"] = max(agree)

    loaded = load_run_model(two.run.path)  # the walk makes stage 2 the model, then asks Prediction
    items = scan.items
    train = list(zip(items.loc[~items["is_valid"], "path"], items.loc[~items["is_valid"], "label"], strict=True))
    valid = list(zip(items.loc[items["is_valid"], "path"], items.loc[items["is_valid"], "label"], strict=True))
    reference = timed("not-sure reference", lambda: novelty.build_reference(
        novelty.body_features(loaded.model), loaded.img_size, train, valid, novelty.NoveltySpec(),
        lambda p: load_image_file(Path(p)).image))  # fmt: skip
    rule = prediction.rule_for(reference)

    def not_sure(paths: list[Path]) -> list[bool]:
        return [prediction.predict(loaded, load_image_file(p).image, k=1, rule=rule, reference=reference).not_sure
                for p in paths]  # fmt: skip

    out["outside"] = not_sure(photos)
    out["test"] = not_sure(test)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=60, help="Fashion-MNIST images per class (600 in all)")
    parser.add_argument("--size", type=int, default=64, help="image size (the Training page's default)")
    parser.add_argument("--precisions", default="auto,fp32,bf16", help="PETLAB_PRECISION values, comma-separated")
    parser.add_argument("--test-per-class", type=int, default=10, help="Fashion-MNIST test images per class")
    args = parser.parse_args()
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        sys.exit("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist (make system-deps)")
    photos = outside_photos()
    work = Path(tempfile.mkdtemp(prefix="petlab-walk-"))
    folder = write_fashion(work / "fashion", per_class=args.per_class)
    test = [p for p, _ in write_fashion_test(work / "fashion-test", args.test_per_class)]

    import torch

    from core.nets import inference

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16 on this CPU: "
          f"{inference.cpu_has_native_bf16()}; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{args.per_class * 10} Fashion-MNIST images, mobilenet_v2 {args.size} px, bs 16; "
          f"{len(photos)} outside photos, {len(test)} Fashion-MNIST test images\n")  # fmt: skip
    results = {}
    for precision in args.precisions.split(","):
        results[precision] = walk(precision, folder, work / precision, args.size, photos, test)
        r = results[precision]
        e = r["errors"]
        print(f"PETLAB_PRECISION={precision} (trains in {r['precision']}): valley {r['valley']:.1e}; error stage 1 "
              f"{e['stage 1']:.1%}, stage 2 {e['stage 2']:.1%} ({100 * (e['stage 2'] - e['stage 1']):+.1f} points, "
              f"{'improves or holds' if e['stage 2'] <= e['stage 1'] else 'WORSE'}), the mistake {e['mistake']:.1%} "
              f"({100 * (e['mistake'] - e['stage 1']):+.1f}); not sure: {sum(r['outside'])}/{len(r['outside'])} "
              f"outside photos, {sum(r['test'])}/{len(r['test'])} test images; Training vs Interpretation differ by "
              f"{100 * r['pages differ by']:.1f} points")  # fmt: skip
        print("  seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in r["seconds"].items()) +
              f" (load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
    if "fp32" in results:
        base = results["fp32"]
        for precision, r in results.items():
            if precision == "fp32":
                continue
            same = r["errors"] == base["errors"] and r["outside"] == base["outside"]
            ratio = sum(r["seconds"].values()) / sum(base["seconds"].values())
            print(f"{precision} vs fp32: {'the same results' if same else 'DIFFERENT results'}; "
                  f"whole walk {ratio:.2f}x the time of fp32")  # fmt: skip


if __name__ == "__main__":
    main()
