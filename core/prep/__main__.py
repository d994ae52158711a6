"""Before class: prepare the data folder, pack it into one bundle, import the bundle in the classroom.

    .venv/bin/python -m core.prep prepare [--quick] [--archs resnet34,resnet50] [--runs ...] [--url MIRROR]
    .venv/bin/python -m core.prep bundle --out petlab-class.tar
    .venv/bin/python -m core.prep import petlab-class.tar [--replace-runs]

The data folder is $PETLAB_DATA (or --data), as for the app. `make prepare`, `make bundle OUT=...`
and `make import BUNDLE=...` call these. Each command imports the engine when it runs (torch and
fastai take seconds to import): `--help` answers at once, and `--data` is set before anything reads it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _names(text: str | None) -> tuple[str, ...] | None:
    return tuple(n.strip() for n in text.split(",") if n.strip()) if text else None


def cmd_prepare(args: argparse.Namespace) -> int:
    from core.prep.prepare import PrepEvent, PrepOptions, lesson_runs, prepare

    if args.list:
        for run in lesson_runs().values():
            print(f"{run.name:20} {run.arch} {run.img_size}px bs {run.bs}: {run.note}")
        return 0
    overrides = {
        key: value
        for key, value in {
            "archs": _names(args.archs),
            "runs": _names(args.runs),
            "url": args.url,
            "local": args.local,
            "weights_url": args.weights_url,
            "run_arch": args.run_arch,
            "img_size": args.size,
            "bs": args.bs,
            "epochs": args.epochs,
            "patch_images": args.patch_images,
        }.items()
        if value is not None
    }
    if args.no_features:
        overrides["features"] = False
    if args.no_patches:
        overrides["patch_indexes"] = False
    options = PrepOptions.quick(**overrides) if args.quick else PrepOptions(**overrides)
    if args.local:  # whoever runs this command may share that path (the allow-list guards browsers' paths)
        from core.settings import FOLDERS_ENV_VAR, allowed_folders

        shared = [*allowed_folders(), Path(args.local).expanduser().resolve()]
        os.environ[FOLDERS_ENV_VAR] = os.pathsep.join(str(p) for p in shared)
    last = [0.0]

    def show(event: PrepEvent) -> None:
        if event.status == "progress":
            now = time.monotonic()
            if now - last[0] < 2 and event.fraction not in (None, 1.0):
                return
            last[0] = now
            pct = f" {event.fraction:.0%}" if event.fraction is not None else ""
            print(f"    {event.step}:{pct} {event.detail}", flush=True)
            return
        mark = {"start": "…", "skip": "=", "done": "✓", "failed": "✗"}[event.status]
        print(f"{mark} {event.step}" + (f": {event.detail}" if event.detail else ""), flush=True)

    try:
        report = prepare(options, show)
    except ValueError as err:  # unknown run or architecture names
        print(f"✗ {err}", file=sys.stderr)
        return 2
    print(
        f"\nPrepared on {report.device}: {len(report.done)} step(s) done, {len(report.skipped)} already there, "
        f"{len(report.failed)} failed, {sum(report.seconds.values()):.0f} s."
    )
    for step, reason in report.failed:
        print(f"  ✗ {step}: {reason}")
    return 1 if report.failed else 0


def _megabytes_printer():
    """A progress(what, done, total) callback printing MB at most every 2 s (and at the end)."""
    last = [0.0]

    def show(what: str, done: int, total: int) -> None:
        if time.monotonic() - last[0] > 2 or done == total:
            last[0] = time.monotonic()
            print(f"    {what}: {done / 1e6:,.0f} / {total / 1e6:,.0f} MB", flush=True)

    return show


def cmd_bundle(args: argparse.Namespace) -> int:
    from core.prep.bundle import write_bundle
    from core.prep.manifest import BundleError
    from core.settings import data_dir

    show = _megabytes_printer()

    try:
        report = write_bundle(data_dir(), Path(args.out), _names(args.run_ids), not args.no_dataset, show)
    except BundleError as err:
        print(f"✗ {err}", file=sys.stderr)
        return 1
    m = report.manifest
    print(f"✓ {report.path}: {report.bytes / 1e6:,.1f} MB, {report.files} files, {report.seconds:.1f} s")
    for run in m.runs:
        print(f"  run {run.run_id}: {run.title} · error_rate {run.scores.get('error_rate')}")
    for warning in m.warnings:
        print(f"  ! {warning}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from core.prep.bundle_import import import_bundle
    from core.prep.manifest import BundleError
    from core.settings import data_dir

    show = _megabytes_printer()

    try:
        report = import_bundle(Path(args.bundle), data_dir(), show, replace_runs=args.replace_runs)
    except BundleError as err:
        print(f"✗ {err}", file=sys.stderr)
        return 1
    made = report.manifest.machine if report.manifest else {}
    print(f"✓ Imported into {data_dir()} (made on {made.get('node', '?')}, {made.get('device', '?')}):")
    print(f"  {report.summary()}")
    for unit in report.kept:
        print(f"  = kept the local {unit}: it is newer than the bundle's")
    for unit in report.not_replaced:
        print(f"  = kept the local {unit}: the bundle's copy is newer; import with --replace-runs to take it")
    for unit in report.replaced:
        print(f"  ! replaced the local {unit} with the bundle's copy")
    for unit in report.conflicts[:10]:
        print(f"  ! {unit} differs from the bundle's; the local file was kept")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.prep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="data folder (default: $PETLAB_DATA, secrets.toml, ~/.petlab)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="download, train and index what the class needs (skips what exists)")
    p.add_argument("--quick", action="store_true", help="resnet34 only: its weights and its three runs")
    p.add_argument("--list", action="store_true", help="list the lesson's runs and exit")
    p.add_argument("--archs", help="ImageNet weights to fetch, comma-separated (default: every arch)")
    p.add_argument("--runs", help="lesson runs to train, comma-separated (see --list)")
    p.add_argument("--url", help="the Pets archive's URL (a mirror); default fastai's URLs.PETS")
    p.add_argument("--local", help="an already downloaded oxford-iiit-pet.tgz or extracted folder")
    p.add_argument("--weights-url", help="folder URL of a mirror holding torchvision's checkpoint files")
    p.add_argument("--run-arch", help="train the lesson's recipe with another arch (e.g. mobilenet_v2)")
    p.add_argument("--size", type=int, help="override every run's image size")
    p.add_argument("--bs", type=int, help="override every run's batch size")
    p.add_argument("--epochs", type=int, help="override every stage's epochs")
    p.add_argument("--patch-images", type=int, help="images per top-patch index (the Layers page uses 300)")
    p.add_argument("--no-features", action="store_true", help="skip the cached features")
    p.add_argument("--no-patches", action="store_true", help="skip the top-patch indexes")
    b = sub.add_parser("bundle", help="pack the data folder's class content into one tar with a manifest")
    b.add_argument("--out", required=True, help="bundle file (.tar, or .tar.gz to compress)")
    b.add_argument("--run-ids", help="only these runs, comma-separated (default: every complete run)")
    b.add_argument("--no-dataset", action="store_true", help="leave the Pets images out")
    i = sub.add_parser("import", help="verify a bundle and merge it into the data folder")
    i.add_argument("bundle")
    i.add_argument(
        "--replace-runs",
        action="store_true",
        help="replace a local run by the bundle's copy of the same run when that is newer (default: keep local)",
    )
    args = parser.parse_args(argv)
    if args.data:
        os.environ["PETLAB_DATA"] = str(Path(args.data).expanduser().resolve())
    return {"prepare": cmd_prepare, "bundle": cmd_bundle, "import": cmd_import}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
