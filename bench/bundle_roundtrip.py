"""`make bundle` / `make import` round trip on a Pets-sized generated data folder: sizes and times.

    .venv/bin/python -m bench.bundle_roundtrip [--images 7390] [--gz]

Builds a data folder shaped like a full lesson prep, without a network or a training:
- 7,390 Pets-named JPEGs (37 breeds, about 110 KB each like the real photos; a few hundred
  generated images, each written under several names: tar and hashing cost bytes, not content);
- torchvision-sized ImageNet checkpoints (random-init resnet18/34/50 state_dicts under torchvision's
  file names, the real offline mobilenet_v2 one);
- the five lesson runs as fastai builds them (resnet34 ×3, resnet50 ×2, 37 classes) with records
  and validation predictions for 1,478 images;
- their cached features (2 augmented views, as the Training page's Fast toggle asks) and the
  top-patch indexes of every stage of 2 ImageNet models and 5 runs over 300 images.
Then times write_bundle and import_bundle into an empty folder, and prints bytes per kind (the
bundle size in docs/before-class.md comes from here). The machine is shared: times are indicative.
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

BREEDS = [f"{'Cat' if i < 12 else 'dog'}{i:02d}" for i in range(37)]  # 12 cat (capitalised) + 25 dog breeds
N_VALID = 1478
PATCH_IMAGES = 300


def make_images(folder: Path, n_images: int, unique: int = 185) -> None:
    """n_images Pets-named JPEGs of about 110 KB, from `unique` generated photos."""
    from core.data.synthetic import draw_example

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    blobs = []
    for i in range(unique):
        buf = io.BytesIO()
        draw_example(i % 37, rng, (560, 420)).save(buf, "JPEG", quality=90)
        blobs.append(buf.getvalue())
    per_class = -(-n_images // 37)
    written = 0
    for c, breed in enumerate(BREEDS):
        for n in range(1, per_class + 1):
            if written == n_images:
                return
            (folder / f"{breed}_{n}.jpg").write_bytes(blobs[(c * per_class + n) % unique])
            written += 1


def state_bytes(model) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    return buf.getvalue()


def make_prep(base: Path, n_images: int) -> None:
    """Everything a full `make prepare` leaves in the data folder, at real sizes."""
    import torchvision

    from core import settings
    from core.data import pets
    from core.inside import patches
    from core.nets.models import ARCHS, create_model, offline_weights_file
    from core.prep import prepare
    from core.store import records, runs
    from core.train import features

    images = pets.pets_folder(base) / "images"
    make_images(images, n_images)
    paths = sorted(str(p) for p in images.glob("*.jpg"))
    ckpts = base / "torch" / "hub" / "checkpoints"
    ckpts.mkdir(parents=True)
    for arch in ("resnet18", "resnet34", "resnet50"):
        name, _ = prepare.weights_file(arch)
        (ckpts / name).write_bytes(state_bytes(getattr(torchvision.models, arch)(weights=None)))
    shutil.copyfile(offline_weights_file(), ckpts / prepare.weights_file("mobilenet_v2")[0])
    n_valid = min(N_VALID, n_images // 5)
    n_train = n_images - n_valid
    rng = np.random.default_rng(0)
    models = {arch: create_model(arch, 37, pretrained=False) for arch in ("resnet34", "resnet50")}
    weights = {arch: state_bytes(model) for arch, model in models.items()}
    run_ids = []
    for lesson in prepare.lesson_runs().values():
        config = prepare.run_config(lesson, "fingerprint", prepare.PrepOptions())
        record = records.RunRecord(
            arch=config.arch,
            classes=tuple(BREEDS),
            img_size=config.img_size,
            title=config.title(),
            config=config,
            created=time.time(),
            epochs=tuple(records.EpochRow(0, e, train_loss=0.3, valid_loss=0.25, error_rate=0.07) for e in range(6)),
            valid_paths=tuple(paths[:n_valid]),
            dataset=records.DatasetInfo(name=pets.PETS_NAME, root=str(images), fingerprint="fingerprint"),
        )
        probs = rng.random((n_valid, 37), dtype=np.float32)
        preds = runs.Preds(probs / probs.sum(1, keepdims=True), rng.integers(0, 37, n_valid).astype(np.int64))
        runs.write_run(base / "runs", config.run_id, weights[config.arch], record, preds)
        run_ids.append((config.run_id, config.arch))
        spec = prepare.feature_spec(config)
        folder = base / "features" / spec.key
        if not folder.exists():
            nf = 2 * (512 if config.arch == "resnet34" else 2048)  # AdaptiveConcatPool2d doubles the body's channels
            feature_set = features.FeatureSet(
                rng.standard_normal((spec.views, n_train, nf), dtype=np.float32),
                rng.integers(0, 37, n_train),
                rng.standard_normal((n_valid, nf), dtype=np.float32),
                rng.integers(0, 37, n_valid),
                1.0,
                False,
                features.batchnorm_stats(models[config.arch][0]),  # batchnorm.npz, as every cache carries it
            )
            features.write_features(folder, feature_set, spec)
    sample = patches.sample_paths(paths, PATCH_IMAGES)
    channels = {"resnet34": (64, 64, 128, 256, 512), "resnet50": (64, 256, 512, 1024, 2048)}
    for model_id, arch in [(f"imagenet-{a}", a) for a in channels] + [(f"run-{r}", a) for r, a in run_ids]:
        for (_, stage), c in zip(ARCHS[arch].stages, channels[arch], strict=True):
            index = patches.PatchIndex(
                values=rng.random((c, patches.TOP_K), dtype=np.float32),
                image_ids=rng.integers(0, PATCH_IMAGES, (c, patches.TOP_K)).astype(np.int32),
                ys=np.zeros((c, patches.TOP_K), np.int32),
                xs=np.zeros((c, patches.TOP_K), np.int32),
                paths=sample,
                stage=stage,
                size=224,
                grid=(7, 7),
                skipped=[],
            )
            key = patches.index_key(model_id, "fingerprint-n300", stage, 224, patches.TOP_K)
            patches.save_index(index, base / settings.PATCH_INDEX_DIR / f"{key}.npz")


def by_arch(f, source: Path) -> str:
    """The arch a feature file belongs to (from its folder's meta.json)."""
    import json

    meta = source / Path(f.path).parent / "meta.json"
    return json.loads(meta.read_text())["spec"]["arch"]


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=7390)
    parser.add_argument("--gz", action="store_true", help="also time a gzip-compressed bundle")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="petlab-roundtrip-"))
    try:
        source, room = work / "prepared", work / "classroom"
        os.environ["PETLAB_DATA"] = str(source)
        os.environ.pop("TORCH_HOME", None)
        from core.prep.bundle import write_bundle
        from core.prep.bundle_import import import_bundle

        t = time.perf_counter()
        make_prep(source, args.images)
        print(f"generated a prepared data folder ({args.images} images) in {time.perf_counter() - t:.0f} s")
        report = write_bundle(source, work / "class.tar")
        by_kind: dict[str, int] = {}
        for f in report.manifest.files:
            by_kind[f.kind] = by_kind.get(f.kind, 0) + f.size
        print(f"make bundle: {report.bytes / 1e6:,.0f} MB, {report.files} files, {report.seconds:.1f} s")
        for kind, size in sorted(by_kind.items(), key=lambda kv: -kv[1]):
            print(f"  {kind:12} {size / 1e6:8,.1f} MB")
        arch_of = {r.run_id: r.arch for r in report.manifest.runs}
        for f in report.manifest.files:
            if f.path.endswith(".pth"):
                print(f"  checkpoint {f.path.rsplit('/', 1)[-1]:26} {f.size / 1e6:8,.1f} MB")
            elif f.path.endswith("model.pt"):
                print(f"  run weights {arch_of[f.path.split('/')[1]]:25} {f.size / 1e6:8,.1f} MB")
        for arch in ("resnet34", "resnet50"):
            size = sum(f.size for f in report.manifest.files if f.kind == "features" and arch in by_arch(f, source))
            print(f"  features {arch:28} {size / 1e6:8,.1f} MB")
        os.environ["PETLAB_DATA"] = str(room)
        os.environ.pop("TORCH_HOME", None)
        result = import_bundle(report.path, room)
        print(f"make import into an empty folder: {result.seconds:.1f} s; {result.summary()}")
        again = import_bundle(report.path, room)
        print(f"make import again (everything already there): {again.seconds:.1f} s")
        if args.gz:
            gz = write_bundle(source, work / "class.tar.gz")
            print(
                f"make bundle OUT=....tar.gz: {gz.bytes / 1e6:,.0f} MB ({gz.bytes / report.bytes:.2f}× the tar), {gz.seconds:.1f} s"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
