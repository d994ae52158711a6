"""Stage 2 (unfrozen) training steps in fp32 vs bf16 autocast on real images, interleaved in one run.

    .venv/bin/python -m bench.precision_speed [--per-class 40] [--size 64] [--bs 32] [--steps 6] [--threads 1]

The same fastai image DataLoaders (a class-balanced Fashion-MNIST subset from Debian's
dataset-fashion-mnist) and the same mobilenet_v2 (ImageNet weights, fastai head), unfrozen, in
channels_last as Pet Lab's stage 2 trains: one training step (forward, loss, backward, fastai's
Adam step) on the same batch, timed alternately in fp32 and under CPU bf16 autocast
(`core.nets.inference.autocast`), median of `steps`. Prints the step-time ratio and whether this CPU
has native bf16 instructions (`core.nets.inference.cpu_has_native_bf16`): without them torch emulates
bf16 and it is slower. What bf16 does to the lesson's results is `bench/lesson_walk.py` (the
lesson walk under each PETLAB_PRECISION, side by side); docs/precision.md has both.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=40)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--bs", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch
    from fastai.losses import CrossEntropyLossFlat
    from fastai.optimizer import Adam

    from bench.train_speed import FASHION_DIR, write_fashion
    from core.data.datasets import DatasetSpec, scan_dataset
    from core.nets import inference
    from core.nets.models import create_model
    from core.store.records import RunConfig
    from core.train.learners import make_dls

    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        print("Fashion-MNIST is absent: apt-get install dataset-fashion-mnist")
        return
    torch.set_num_threads(args.threads)
    base = Path(tempfile.mkdtemp(prefix="petlab-precision-"))
    folder = write_fashion(base / "fashion", per_class=args.per_class)
    scan = scan_dataset(DatasetSpec(name="fashion", kind="folder", root=str(folder), pattern=r"^(.+)_\d+\.png$"))
    config = RunConfig(dataset=scan.fingerprint, img_size=args.size, bs=args.bs, seed=0)
    dls = make_dls(scan.items, config, torch.device("cpu"))
    xb, yb = dls.train.one_batch()
    xb = xb.contiguous(memory_format=torch.channels_last)
    loss_func = CrossEntropyLossFlat()
    nets, opts = {}, {}
    model = create_model("mobilenet_v2", len(dls.vocab), pretrained=True).train()
    for precision in ("fp32", "bf16"):
        net = copy.deepcopy(model).to(memory_format=torch.channels_last)
        nets[precision], opts[precision] = net, Adam(list(net.parameters()), lr=1e-5)

    def step(precision: str) -> float:
        net, opt = nets[precision], opts[precision]
        start = time.perf_counter()
        with inference.autocast("cpu", precision):
            loss = loss_func(net(xb).float(), yb)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return time.perf_counter() - start

    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for precision in times:  # warm-up: oneDNN picks its kernels on the first calls
        step(precision)
    for i in range(args.steps):
        for precision in ("fp32", "bf16") if i % 2 == 0 else ("bf16", "fp32"):
            times[precision].append(step(precision))
    fp32, bf16 = statistics.median(times["fp32"]), statistics.median(times["bf16"])
    print(f"mobilenet_v2 unfrozen, channels_last, {args.size} px, bs {args.bs}, {args.threads} thread(s); "
          f"native bf16 on this CPU: {inference.cpu_has_native_bf16()}")  # fmt: skip
    print(f"training step: fp32 {fp32 * 1000:.0f} ms, bf16 autocast {bf16 * 1000:.0f} ms (median of {args.steps})")
    print(f"bf16 / fp32 = {bf16 / fp32:.2f}x ({'faster' if bf16 < fp32 else 'slower'}); "
          f"core.nets.inference.precision_for('cpu') = {inference.precision_for('cpu')}")  # fmt: skip


if __name__ == "__main__":
    main()
