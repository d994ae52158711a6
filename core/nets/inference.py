"""One fast inference path for prediction and feature extraction: BatchNorm folded, the device's best layout.

In eval mode a BatchNorm after a convolution is a fixed per-channel scale and shift, so it can be
folded into the convolution's weights and bias: one layer instead of two, the same numbers up to
float rounding. `torch.fx.experimental.optimization.fuse` does this on a traced copy of the model;
on a CPU the copy then runs in channels_last (NHWC), the layout oneDNN's convolutions are fastest
in. The copy is built once per model (about 0.15 s for mobilenet_v2, no compilation) and cached; it
is rebuilt when the model's weights change (training, load_state_dict). The model itself is never
touched: Grad-CAM, hooks and other gradient views keep using the eager model.

Routes measured on the 2-core dev CPU, mobilenet_v2, batch 1, one thread (bench/predict_speed.py
prints the chosen one beside the eager forward): eager 18.7 ms; fx fuse 16.9 ms; fx fuse +
channels_last 12.6 ms (chosen); fx `optimize_for_inference` (mkldnn tensors) 26.8 ms;
`torch.jit.freeze` + `optimize_for_inference` 9.8 ms but TorchScript is deprecated in this torch;
`torch.export(...).module()` 17.7 ms (no faster than eager without a compiler); ONNX Runtime 9.0 ms
but a new dependency and a 5.8 s export per model; bf16 autocast 2.2x *slower* (that CPU had no
native bf16 instructions; predictions stay fp32 on every machine anyway). See docs/precision.md and bench/README.md.

Mixed precision lives here too (`precision_for`, `autocast`, `training_callbacks`). Precision is a way to
train, never a way to compute what is stored or compared: training *steps* may run under bf16/fp16
autocast (on CUDA by default; on a CPU only when `PETLAB_PRECISION` forces it), while validation, the
stored predictions, cached body features, novelty references and patch indexes are always computed in
fp32 (on CUDA with TF32 off, see `exact_fp32`), so a cache made on one machine holds the numbers any
other machine would compute. docs/precision.md has the measurements behind the CPU default (fp32).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import threading
import weakref
from pathlib import Path

import torch
from torch import nn

from core.i18n import _

PRECISIONS = ("fp32", "bf16", "fp16")
PRECISION_ENV = "PETLAB_PRECISION"  # "auto" (default), "fp32", "bf16" or "fp16"

_LOCK = threading.Lock()
# weak: a dropped model drops its copy;
# model -> {"model" | "features": (its weights, their signature, fast module)}
_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[str, tuple[list, tuple, nn.Module]]] = weakref.WeakKeyDictionary()


class FastModule(nn.Module):
    """The folded copy plus the input layout it wants; call it under torch.inference_mode()."""

    def __init__(self, inner: nn.Module, channels_last: bool, route: str):
        super().__init__()
        self.inner = inner
        self.channels_last = channels_last
        self.route = route  # e.g. "fx fuse + channels_last", for benches and the page's caption

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.inner(x)


def _device_of(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _weights(model: nn.Module) -> list[torch.Tensor]:
    """Every parameter and buffer of model, in a fixed order."""
    return [*model.parameters(), *model.buffers()]


def _signature(tensors: list[torch.Tensor]) -> tuple:
    """Device and in-place version of every weight: changes when training or load_state_dict touches one.

    Reading the versions of a kept list costs ~0.03 ms for mobilenet_v2; walking the modules for
    the list again costs ~0.6 ms, a twentieth of a prediction's forward, so the list is kept with
    the twin. A weight *replaced* by a new tensor object (not updated in place) is not seen: call
    `forget(model)` after such a change.
    """
    return (str(tensors[0].device) if tensors else "cpu", tuple(t._version for t in tensors))


def _fold(module: nn.Module) -> tuple[nn.Module, str]:
    """An eval-mode copy of module with every Conv+BatchNorm pair folded (falls back to a plain copy)."""
    from torch.fx.experimental.optimization import fuse

    twin = copy.deepcopy(module).eval()
    for p in twin.parameters():
        p.requires_grad_(False)
    try:
        return fuse(twin, inplace=True), "fx fuse"
    except Exception:  # a model torch.fx cannot trace: the eager copy still gives the right answer
        return twin, "eager copy (fx could not trace it)"


def _build(module: nn.Module, device: torch.device) -> FastModule:
    inner, route = _fold(module)
    channels_last = device.type in ("cpu", "cuda")  # MPS: keep NCHW
    if channels_last:
        inner = inner.to(memory_format=torch.channels_last)
        route += " + channels_last"
    return FastModule(inner, channels_last, route).eval()


def _cached(model: nn.Module, kind: str, make) -> FastModule:
    with _LOCK:
        entry = _CACHE.setdefault(model, {}).get(kind)
        if entry is not None and _signature(entry[0]) == entry[1]:
            return entry[2]
        tensors = _weights(model)
        fast = _build(make(), _device_of(model))
        _CACHE[model][kind] = (tensors, _signature(tensors), fast)
        return fast


def forget(model: nn.Module) -> None:
    """Drop model's fast twins (after replacing a weight tensor rather than updating it in place)."""
    with _LOCK:
        _CACHE.pop(model, None)


def fast_forward(model: nn.Module) -> FastModule:
    """The model's inference twin (BatchNorm folded, device layout), built once and cached per model.

    Same outputs as `model.eval()(x)` up to float rounding; call it under `torch.inference_mode()`.
    """
    return _cached(model, "model", lambda: model)


def pooled_features_module(model: nn.Sequential) -> FastModule:
    """The fast twin of body → AdaptiveConcatPool2d → Flatten of a fastai Sequential(body, head)."""
    return _cached(model, "features", lambda: nn.Sequential(model[0], model[1][0], model[1][1]))


def body_module(model: nn.Sequential) -> FastModule:
    """The fast twin of the body (model[0]) of a Sequential(body, head): its output is the last stage's feature maps."""
    return _cached(model, "body", lambda: model[0])


def feature_maps_of(model: nn.Sequential, xb: torch.Tensor) -> torch.Tensor:
    """The body's output for a batch through the fast path, float32 on the model's device, as an ordinary tensor.

    (B, 3, S, S) -> (B, C, h, w), e.g. (1, 1280, 7, 7) for mobilenet_v2 at 224 px. Not an inference
    tensor: the head may run on it with autograd (Grad-CAM from the same forward).
    """
    net, device = body_module(model), _device_of(model)
    with torch.inference_mode():
        maps = net(xb.to(device)).float()
    return maps.clone()  # outside inference mode: an ordinary tensor autograd can use


def features_of(model: nn.Sequential, xb: torch.Tensor) -> torch.Tensor:
    """Pooled body features (B, 2·nf) of a batch through the fast path, in fp32, on the model's device.

    Always fp32, whatever precision training uses: these are the numbers feature caches store and
    the "not sure" rule compares, so they must not depend on the machine that computed them.
    """
    net, device = pooled_features_module(model), _device_of(model)
    with torch.inference_mode():
        return net(xb.to(device)).float()


def logits_of(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits of a batch through the fast path, as float32 on the CPU."""
    with torch.inference_mode():
        return fast_forward(model)(x.to(_device_of(model))).float().cpu()


# ---- mixed precision ------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 instructions (x86 avx512_bf16 or AMX, ARM bf16); elsewhere bf16 is emulated."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags = set(line.split(":", 1)[1].split())
            return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    return False


def precision_for(device: torch.device | str) -> str:
    """The precision training steps run in on device: "fp32", "bf16" or "fp16".

    CPUs train in fp32, with or without native bf16 instructions: measured on a CPU with them
    (docs/precision.md), bf16 autocast was slower in the app at its default sizes and changed the
    lesson's results, and a lesson's numbers must not depend on which laptop the teacher owns. On
    CUDA bf16 where the GPU supports it, else fp16 (training steps only: see training_callbacks).
    MPS stays fp32. `PETLAB_PRECISION` ("fp32", "bf16", "fp16"; "auto" or unset: this rule)
    overrides it, which is how tests make one machine behave like another.
    """
    forced = os.environ.get(PRECISION_ENV, "auto").strip().lower()
    if forced in PRECISIONS:
        return forced
    if forced not in ("", "auto"):
        raise ValueError(f"{PRECISION_ENV}={forced!r}: choose auto, {', '.join(PRECISIONS)}.")
    if torch.device(device).type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def autocast(device: torch.device | str, precision: str):
    """torch.autocast for precision on device (a no-op context for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def exact_fp32() -> None:
    """Make fp32 mean fp32 on CUDA: no TF32 in convolutions (on by default in torch) or matrix products.

    With TF32 an Ampere-or-later GPU rounds fp32 convolution inputs to 10 mantissa bits: its
    "fp32" features and predictions would differ from a CPU's by ~1e-3, and caches made there would
    not hold the numbers a CPU computes. Mixed-precision training steps are unaffected (autocast).
    """
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def mixed_precision_callbacks(device: torch.device | str, precision: str) -> list:
    """fastai callbacks that run the *training* batches under precision; validation batches stay fp32.

    The validation pass computes the per-epoch error the Training page shows and the predictions
    stored with the run (Interpretation reads them): both come from one fp32 forward of the final
    weights, whatever precision the steps used. On CUDA this is fastai's MixedPrecision (its
    gradient scaler for fp16) with the autocast opened for training batches only; on a CPU a CPU
    autocast around the forward pass and the loss (bf16 needs no gradient scaler: it has fp32's range).
    """
    if precision == "fp32":
        return []
    kind = torch.device(device).type
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    if kind == "cuda":
        from fastai.callback.fp16 import MixedPrecision

        class TrainingMixedPrecision(MixedPrecision):
            def before_batch(self) -> None:
                self.on = self.training
                if self.on:
                    super().before_batch()

            def after_loss(self) -> None:
                if self.on:
                    super().after_loss()

        return [TrainingMixedPrecision(amp_mode=precision)]
    from fastai.callback.core import Callback
    from fastai.torch_core import to_float

    class CPUAutocast(Callback):
        order = 10  # where fastai's MixedPrecision sits

        def before_batch(self) -> None:
            self.ctx = autocast(kind, precision) if self.training else contextlib.nullcontext()
            self.ctx.__enter__()

        def after_pred(self) -> None:
            self.learn.pred = to_float(self.pred)

        def after_loss(self) -> None:
            self.ctx.__exit__(None, None, None)

    return [CPUAutocast()]


def precision_note(record) -> str:
    """One line for the Training page: which precision this run (a core.store.records.RunRecord) trained in."""
    if record.precision == "fp32":
        return _("Precision: fp32 on {device} (mixed precision is used only where it measures faster).").format(
            device=record.device or "cpu"
        )
    return _(
        "Precision: {precision} mixed precision (autocast) for the training steps on {device}; weights, "
        "validation and the stored predictions in fp32."
    ).format(precision=record.precision, device=record.device)


def training_callbacks(device: torch.device | str, precision: str) -> list:
    """Callbacks for image training (stage 2): channels_last on CPU/CUDA, plus mixed precision when on.

    channels_last measured 1.26-1.36x faster per training step than NCHW for mobilenet_v2 on the dev CPU
    (oneDNN's convolutions, forward and backward); the model is put back in NCHW after fit.
    """
    from fastai.callback.core import Callback

    class ChannelsLast(Callback):
        order = 9  # before mixed precision's autocast

        def before_fit(self) -> None:
            self.learn.model.to(memory_format=torch.channels_last)

        def before_batch(self) -> None:
            if self.xb and self.xb[0].dim() == 4:
                self.learn.xb = (self.xb[0].contiguous(memory_format=torch.channels_last), *self.xb[1:])

        def after_fit(self) -> None:
            self.learn.model.to(memory_format=torch.contiguous_format)

    layout = [ChannelsLast()] if torch.device(device).type in ("cpu", "cuda") else []
    return layout + mixed_precision_callbacks(device, precision)
