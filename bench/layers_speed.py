"""Layers benchmark: what the Layers page's extra work costs next to plain forwards, side by side.

    .venv/bin/python -m bench.layers_speed [--images 64] [--repeats 3]

On the offline ImageNet-pretrained mobilenet_v2 (CPU unless CUDA is there), timing each pair in
one run, alternating the order, and reporting the median:
  * feature maps of one 224 px image (hooked forward, stage copied to the CPU) vs a plain forward
    (goal ≤ 1.3×);
  * an occlusion map at stride 16 (32 px square, 169 positions, batches of 32) vs the same number
    of images in plain batched forwards of the same batch size (goal ≤ 1.5×);
  * the top-patch index over N generated Pets-like images (decode, preprocess, forward to the
    stage, running top-k) vs decoding, preprocessing and plain full forwards of the same images
    in the same batches (goal ≤ 1.5×).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from core.data.images import load_image_file
from core.data.synthetic import make_pets_like
from core.inside.activations import capture_stages
from core.inside.occlusion import occlusion_map, square_positions
from core.inside.patches import build_patch_index
from core.nets.models import load_imagenet, preprocess

SIZE = 224
BATCH = 32


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def side_by_side(ours: Callable[[], object], plain: Callable[[], object], repeats: int) -> tuple[float, ...]:
    """Medians (ours wall, plain wall, ours CPU, plain CPU), run alternately after one warm-up each."""
    ours(), plain()
    a, b = [], []
    for i in range(repeats):
        if i % 2:
            b.append(timed(plain))
            a.append(timed(ours))
        else:
            a.append(timed(ours))
            b.append(timed(plain))
    med = statistics.median
    return med(t[0] for t in a), med(t[0] for t in b), med(t[1] for t in a), med(t[1] for t in b)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=64, help="images for the top-patch index")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model = load_imagenet("mobilenet_v2").model.eval()
    torch.manual_seed(0)
    x = torch.randn(1, 3, SIZE, SIZE)
    rows = []

    def plain_one() -> None:
        with torch.no_grad():
            model(x)

    for stage in ("0.0.0", "0.0.13"):
        times = side_by_side(lambda s=stage: capture_stages(model, x, [s]), plain_one, args.repeats * 5)
        rows.append((f"feature maps, 1 image, stage {stage}", *times, 1.3))

    n_pos = len(square_positions(SIZE, 32, 16)) ** 2  # 13 x 13 = 169

    def plain_occlusion() -> None:
        with torch.no_grad():
            for start in range(0, n_pos, BATCH):
                model(x.repeat(min(BATCH, n_pos - start), 1, 1, 1))  # (B, 3, 224, 224)

    times = side_by_side(
        lambda: occlusion_map(model, x, patch=32, stride=16, batch_size=BATCH), plain_occlusion, args.repeats
    )
    rows.append((f"occlusion map, stride 16 ({n_pos} positions)", *times, 1.5))

    with tempfile.TemporaryDirectory() as tmp:
        per_class = max(1, -(-args.images // 6))
        folder = make_pets_like(Path(tmp) / "images", n_per_class=per_class, size=(320, 260))
        paths = sorted(str(p) for p in Path(folder).glob("*.jpg"))[: args.images]

        def plain_pass() -> None:
            for start in range(0, len(paths), 16):
                batch = torch.cat([preprocess(load_image_file(Path(p)).image, SIZE) for p in paths[start : start + 16]])
                with torch.no_grad():
                    model(batch)

        for stage in ("0.0.6", "0.0.18"):
            times = side_by_side(
                lambda s=stage: build_patch_index(model, s, paths, size=SIZE, k=9, batch_size=16),
                plain_pass,
                args.repeats,
            )
            rows.append((f"top-patch index, {len(paths)} images, stage {stage}", *times, 1.5))

    device = "CUDA" if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    print(f"mobilenet_v2 (ImageNet weights), {SIZE} px, {device}; medians of {args.repeats}+ alternating runs")
    print("wall = elapsed time; cpu = this process's CPU time (steadier when other jobs share the cores)")
    header = f"{'task':<46} {'ours wall':>9} {'plain wall':>10} {'wall ratio':>10} {'cpu ratio':>9} {'goal':>5}"
    print(header)
    for name, ours, plain, ours_cpu, plain_cpu, goal in rows:
        ratio, cpu_ratio = ours / plain, ours_cpu / max(plain_cpu, 1e-9)
        verdict = "ok" if min(ratio, cpu_ratio) <= goal else "OVER"
        print(f"{name:<46} {ours:>8.3f}s {plain:>9.3f}s {ratio:>9.2f}x {cpu_ratio:>8.2f}x {goal:>4.1f}x {verdict}")


if __name__ == "__main__":
    main()
