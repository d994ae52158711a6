"""Prediction benchmark: the Prediction page's path vs a bare forward and vs fastai's learn.predict.

    .venv/bin/python -m bench.predict_speed [--repeats 30] [--side 1024] [--threads N]

One fastai Learner (vision_learner, mobilenet_v2 with its offline ImageNet body, a fresh head for
6 generated Pets-like classes, DataLoaders with Resize(224)) and one decoded photo. Three ways to
get its top-5 classes, timed alternately in the same run (median of `repeats`):
  * ours: `core.predict.prediction.predict` from the decoded PIL image to the top-5 list (preprocess, the
    fast forward of core.nets.inference — BatchNorm folded, channels_last — softmax, top-k, not-sure
    scores) — what the page runs;
  * fast bare: `fast_forward(model)(x)` alone on the already-preprocessed (1, 3, 224, 224) tensor,
    channels_last as the page hands it over (goal: ours ≤ 1.2×);
  * eager bare: `model(x)` on the same tensor (what the fast path saves);
  * fastai: `learn.predict(image)` on the same PIL image, the usual notebook path (goal: ours ≥ 2× faster).
All use the very same nn.Module (the fast path a folded copy of it), on the CPU (`--device cuda`
on a GPU machine). `--threads 1` gives steadier numbers on a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

from core.data.labels import PETS_PATTERN
from core.data.synthetic import draw_example, make_pets_like
from core.nets.inference import fast_forward
from core.nets.models import LoadedModel, prepare_torch_home, preprocess, register_fastai_meta
from core.predict.prediction import predict

SIZE = 224


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each function, run in rotating order after two warm-ups each."""
    for fn in fns.values():
        fn(), fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for i in range(repeats):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            times[name].append(timed(fns[name]))
    return {name: statistics.median(values) for name, values in times.items()}


def build_learner(folder: Path, device: torch.device):
    """A fastai Learner on generated Pets-like images: vision_learner(mobilenet_v2), fresh 6-class head."""
    from fastai.data.transforms import get_image_files
    from fastai.vision.augment import Resize
    from fastai.vision.data import ImageDataLoaders
    from fastai.vision.learner import vision_learner
    from torchvision.models import mobilenet_v2

    register_fastai_meta()
    prepare_torch_home()  # the offline ImageNet weights where torchvision looks
    files = get_image_files(folder)
    dls = ImageDataLoaders.from_name_re(
        folder, files, PETS_PATTERN, item_tfms=Resize(SIZE), bs=8, num_workers=0, device=device, seed=42
    )
    learn = vision_learner(dls, mobilenet_v2, pretrained=True)
    learn.model.to(device).eval()
    return learn


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument(
        "--side", type=int, default=1024, help="longer side of the test photo (uploads are shrunk to 1024)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        folder = make_pets_like(Path(tmp) / "images", n_per_class=8, size=(320, 260))
        learn = build_learner(folder, device)
        loaded = LoadedModel(
            model=learn.model,
            arch="mobilenet_v2",
            classes=list(learn.dls.vocab),
            label="bench learner",
            kind="run",
            img_size=SIZE,
        )
        image = draw_example(3, np.random.default_rng(0), (args.side, args.side * 3 // 4))  # decoded RGB photo
        x = preprocess(image, SIZE, channels_last=True).to(device)  # (1, 3, 224, 224) as the page makes it
        side = min(image.size)
        left, top = (image.size[0] - side) // 2, (image.size[1] - side) // 2
        box = (left, top, left + side, top + side)  # the page's centre square
        model = learn.model
        fast = fast_forward(model)  # built once (cached per model), as the page's first prediction does

        def sync() -> None:
            if device.type == "cuda":
                torch.cuda.synchronize()

        def bare() -> None:
            with torch.inference_mode():
                fast(x)  # (1, 6) logits
            sync()

        def eager() -> None:
            with torch.inference_mode():
                model(x)
            sync()

        fns = {
            "ours": lambda: predict(loaded, image, k=5),
            "bare": bare,
            "eager": eager,
            "fastai": lambda: learn.predict(image),
            "preprocess": lambda: preprocess(image, SIZE, channels_last=True),
            "resize": lambda: image.resize((SIZE, SIZE), Image.Resampling.BILINEAR, box=box),
        }
        with torch.inference_mode():
            dp = (fast(x).softmax(1) - model(x).softmax(1)).abs().max().item()
        # same answer from both paths (fastai.callback.progress is not imported: no progress bar to slow it)
        ours_pred = predict(loaded, image, k=len(loaded.classes))
        _, _, fastai_probs = learn.predict(image)
        fastai_top = [learn.dls.vocab[int(i)] for i in fastai_probs.argsort(descending=True)[:5]]
        ours_probs = dict(zip(ours_pred.labels, ours_pred.probs, strict=True))
        gap = max(abs(ours_probs[c] - float(p)) for c, p in zip(learn.dls.vocab, fastai_probs, strict=True))
        medians = interleaved(fns, args.repeats)

    threads = torch.get_num_threads()
    print(f"mobilenet_v2 via fastai vision_learner, 6 classes, {SIZE} px, {device} ({threads} CPU threads)")
    print(f"fast path: {fast.route}; largest probability difference to the eager model {dp:.1e}")
    print(f"photo {image.size[0]}×{image.size[1]} decoded; median of {args.repeats} interleaved runs")
    print(f"top-5 ours:   {ours_pred.labels[:5]}")
    print(f"top-5 fastai: {fastai_top}  (largest probability difference {gap:.4f}: fastai crops, then resizes; the "
          "page resizes a box, whose antialiasing also reads the pixels just outside it)")  # fmt: skip
    print(f"{'path':<44} {'median (ms)':>12}")
    print(f"{'ours: core.predict.prediction.predict (PIL -> top-5)':<44} {medians['ours'] * 1000:>12.2f}")
    print(f"{'fast bare: fast_forward(model)(x)':<44} {medians['bare'] * 1000:>12.2f}")
    print(f"{'eager bare: model(x)':<44} {medians['eager'] * 1000:>12.2f}")
    print(f"{'fastai: learn.predict(PIL image)':<44} {medians['fastai'] * 1000:>12.2f}")
    print(f"{'preprocess alone (crop+resize+normalise)':<44} {medians['preprocess'] * 1000:>12.2f}")
    print(f"{'  of which the PIL resize':<44} {medians['resize'] * 1000:>12.2f}")
    over_ours, over_fastai = medians["ours"] - medians["bare"], medians["fastai"] - medians["bare"]
    print(f"time on top of the forward: ours {over_ours * 1000:.2f} ms, learn.predict {over_fastai * 1000:.2f} ms")
    vs_bare = medians["ours"] / medians["bare"]
    vs_fastai = medians["fastai"] / medians["ours"]
    print(f"eager / fast forward  = {medians['eager'] / medians['bare']:.2f}x  (what folding + layout save)")
    print(f"ours / fast forward   = {vs_bare:.2f}x  (goal <= 1.2x) {'ok' if vs_bare <= 1.2 else 'OVER'}")
    print(f"learn.predict / ours  = {vs_fastai:.2f}x  (goal >= 2x faster) {'ok' if vs_fastai >= 2 else 'UNDER'}")


if __name__ == "__main__":
    main()
