"""A class bundle prepared on one machine (a GPU) and used on another (a CPU): is everything there, the same numbers?

    .venv/bin/python -m bench.bundle_check prepare --out DIR [--size 64] [--per-class 12]   # where the GPU is
    CUDA_VISIBLE_DEVICES= PETLAB_PRECISION=fp32 .venv/bin/python -m bench.bundle_check check DIR/petlab-class.tar

`prepare` makes a tiny offline lesson (a generated Pets-shaped folder, mobilenet_v2, the lesson's frozen
run and its unfrozen stage 2 with the lesson's slice, their cached features and top-patch indexes) with
`python -m core.prep prepare` on this machine's device and precision (CUDA: bf16 or fp16 training steps),
then `python -m core.prep bundle`. `check` imports the bundle into an empty data folder on this machine
(`python -m core.prep import`) and uses every part of it the way the pages do, printing one line each:
- every run loads and its stored predictions (made where it trained) are what this machine computes
  from its weights (max |Δp|, goal ≤ 1e-3) and give the error its last epoch recorded;
- the Training page's Fast twin of the prepared frozen run counts as cached, the LR finder trains on the
  cached features without extracting, and those features are what this machine extracts (max relative
  difference, goal ≤ 1e-3);
- every patch index loads and names images that exist here.
Exit status 1 when a check fails. bench/gpu_check.sh runs both halves (`--dry-run`: both on the CPU,
the preparing half with bf16 forced).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PREDS_GOAL = 1e-3  # max |Δ probability| between the stored predictions and this machine's
FEATURES_GOAL = 1e-3  # max |Δ feature| / max |feature| between the cached features and this machine's


def classroom(data: Path, *args: str) -> str:
    """python -m core.prep with this data folder, as `make prepare/bundle/import` run it; its output."""
    done = subprocess.run([sys.executable, "-m", "core.prep", "--data", str(data), *args],
                          cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    print(done.stdout[-2000:], end="")
    if done.returncode != 0:
        sys.exit(f"python -m core.prep {args[0]} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def cmd_prepare(args: argparse.Namespace) -> int:
    import torch

    from core.data.synthetic import make_pets_like
    from core.nets import inference

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    source = out / "download" / "oxford-iiit-pet"
    make_pets_like(source / "images", n_per_class=args.per_class)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"preparing on {device}, training precision {inference.precision_for(device)}")
    classroom(out / "home", "prepare", "--local", str(source), "--archs", "mobilenet_v2", "--runs",
              "resnet34-unfrozen", "--run-arch", "mobilenet_v2", "--size", str(args.size), "--bs", "16",
              "--epochs", str(args.epochs))  # fmt: skip
    classroom(out / "home", "bundle", "--out", str(out / "petlab-class.tar"))
    print(f"bundle: {out / 'petlab-class.tar'}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    room = Path(args.data or tempfile.mkdtemp(prefix="petlab-classroom-")).resolve()
    os.environ["PETLAB_DATA"] = str(room)
    os.environ.pop("TORCH_HOME", None)
    classroom(room, "import", str(Path(args.bundle).resolve()))

    import numpy as np
    import torch

    from core.data import pets
    from core.data.datasets import scan_dataset
    from core.inside import patches
    from core.nets import inference, models
    from core.prep import prepare
    from core.store import records, runs
    from core.train import features, interpretation, learners, lr_finder

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"checking on {device}, training precision here {inference.precision_for(device)}")
    failed: list[str] = []

    def report(ok: bool, line: str) -> None:
        print(f"{'ok  ' if ok else 'FAIL'} {line}")
        if not ok:
            failed.append(line)

    images = pets.find_pets(room)
    report(images is not None, "the bundled Pets-shaped images are in the data folder")
    scan = scan_dataset(pets.pets_spec(images))
    found, skipped = runs.list_runs(room / "runs")
    report(len(found) == 2 and not skipped, f"{len(found)} runs imported (the frozen run and stage 2), {skipped}")
    for run in found:
        loaded = runs.load_run_model(run.path)
        stored = runs.load_preds(run.path, len(loaded.classes))
        dls = learners.make_dls(scan.items, run.record.config, torch.device("cpu"))
        with torch.no_grad():
            here = torch.cat([torch.softmax(loaded.model.eval()(xb.cpu()), 1) for xb, _ in dls.valid]).numpy()
        diff = float(np.abs(stored.probs - here).max())
        err = interpretation.error_rate(stored.probs, stored.targets)
        report(
            diff <= PREDS_GOAL and abs(err - run.record.error_rate) < 1e-6,
            f"run {run.run_id} ({run.record.precision} on {run.record.device}): stored predictions vs this machine's "
            f"max |Δp| {diff:.1e} (goal <= {PREDS_GOAL:g}); error {err:.2%} = last epoch's {run.record.error_rate:.2%}",
        )
    frozen = next(r for r in found if len(r.record.config.stages) == 1)
    spec = prepare.feature_spec(frozen.record.config)
    fast = replace(frozen.record.config, stages=(replace(frozen.record.config.stages[0], fast=True, views=spec.views),))
    twin = runs.find_frozen_run(room / "runs", fast, views=spec.views)[1]
    report(twin is not None and twin.run_id == frozen.run_id, "the Training page's Fast twin is 'already trained'")
    cached = learners.features_cached(fast, room / "features")
    report(cached and lr_finder.cheap(fast, room / "features"), "its body features count as cached (cheap LR finder)")
    events: list[records.TrainEvent] = []
    result = lr_finder.find_lr(fast, scan, room / "runs", room / "features", num_it=30, on_event=events.append)
    extracted = any(e.kind == records.EventKind.EXTRACT for e in events)
    report(result.fast and not extracted, f"LR finder on the cached features in {result.seconds:.1f} s, no extraction")
    cache = features.load_features(features.features_folder(room / "features", spec))
    body = models.create_model(fast.arch, len(frozen.record.classes), pretrained=True)
    features.load_batchnorm_stats(body[0], cache.bn_stats)
    dls = learners.make_dls(scan.items, fast, torch.device("cpu"))
    mine = torch.cat([inference.features_of(body, xb.cpu()) for xb, _ in dls.valid]).numpy()
    rel = float(np.abs(cache.valid_x - mine).max() / max(1e-12, float(np.abs(mine).max())))
    report(
        rel <= FEATURES_GOAL,
        f"cached features vs this machine's: max relative |Δ| {rel:.1e} (goal <= {FEATURES_GOAL:g})",
    )
    indexes = sorted((room / "patch_index").glob(f"*{patches.INDEX_SUFFIX}"))
    usable = [patches.verify_index(p) for p in indexes]
    named = all(Path(path).is_file() for index in usable for path in index.paths)
    report(bool(indexes) and named, f"{len(indexes)} patch indexes load and name images that are here")
    print(f"bundle check: {'every check passed' if not failed else f'{len(failed)} check(s) FAILED'}")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="prepare a tiny lesson on this machine and bundle it")
    p.add_argument("--out", required=True, help="folder for the prepared data folder and the bundle")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--per-class", type=int, default=12)
    p.add_argument("--epochs", type=int, default=1)
    c = sub.add_parser("check", help="import a bundle into an empty data folder here and use every part of it")
    c.add_argument("bundle")
    c.add_argument("--data", help="the classroom data folder (default: a new temporary folder)")
    args = parser.parse_args()
    return cmd_prepare(args) if args.command == "prepare" else cmd_check(args)


if __name__ == "__main__":
    sys.exit(main())
