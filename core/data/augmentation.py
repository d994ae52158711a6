"""Data augmentation with fastai's own transforms, applied to one image reproducibly by seed.

fastai applies *item* transforms (Resize, RandomResizedCrop) to each PIL image on the CPU, then
*batch* transforms (aug_transforms: flip, rotate, zoom, warp, lighting) to a whole batch tensor,
usually on the GPU. To preview them on one picture we build a batch of that picture repeated and
run both pipelines exactly as a training DataLoader would (split_idx=0 turns on the randomness).
"""

from __future__ import annotations

import random
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import torch
from fastai.data.transforms import IntToFloatTensor, Normalize, ToTensor
from fastai.vision.augment import (
    RandomResizedCrop,
    Resize,
    aug_transforms,
)
from fastai.vision.core import PILImage, TensorImage, imagenet_stats
from fasttransform import Pipeline
from PIL import Image
from plotly.subplots import make_subplots

from core.i18n import _

METHODS = ("crop", "pad", "squish")  # fastai ResizeMethod values
PAD_MODES = ("reflection", "zeros", "border")  # fastai PadMode values
CHANNELS = (("R", "#d62728"), ("G", "#2ca02c"), ("B", "#1f77b4"))
# Python's `random` and torch's global generator are process-wide: one preview at a time.
_SEED_LOCK = threading.Lock()


@dataclass(frozen=True)
class AugConfig:
    """Everything that decides what an augmented sample looks like (its hash is a cache key)."""

    size: int = 224  # final size the model sees
    presize: bool = True  # the lesson's presizing: big item Resize, then augment + crop to size on the batch
    item_size: int = 460  # item Resize size when presizing
    item_tfm: str = "resize"  # "resize" | "random_resized_crop" (used without presizing)
    method: str = "crop"  # ResizeMethod for Resize: crop | pad | squish
    pad_mode: str = "reflection"  # PadMode for Resize(pad) and for the affine warps
    min_scale: float = 0.75  # RandomResizedCrop / aug_transforms(min_scale=...)
    do_flip: bool = True
    flip_vert: bool = False
    max_rotate: float = 10.0
    max_zoom: float = 1.1
    max_warp: float = 0.2
    max_lighting: float = 0.2
    p_affine: float = 0.75
    p_lighting: float = 0.75


def item_tfms(config: AugConfig) -> list:
    """fastai item transforms for config: Resize(460) when presizing, else Resize(size, ...) or RandomResizedCrop."""
    if config.presize:
        return [Resize(config.item_size)]
    if config.item_tfm == "random_resized_crop":
        return [RandomResizedCrop(config.size, min_scale=config.min_scale)]
    return [Resize(config.size, method=config.method, pad_mode=config.pad_mode)]


def batch_tfms(config: AugConfig) -> list:
    """fastai's aug_transforms for config (with size/min_scale when presizing)."""
    extra = {"size": config.size, "min_scale": config.min_scale} if config.presize else {}
    return list(
        aug_transforms(
            do_flip=config.do_flip,
            flip_vert=config.flip_vert,
            max_rotate=config.max_rotate,
            max_zoom=config.max_zoom,
            max_warp=config.max_warp,
            max_lighting=config.max_lighting,
            p_affine=config.p_affine,
            p_lighting=config.p_lighting,
            pad_mode=config.pad_mode,
            **extra,
        )
    )


@contextmanager
def seeded(seed: int):
    """Seed Python's and torch's generators for the block, then restore them (so callers are unaffected)."""
    with _SEED_LOCK:
        py_state = random.getstate()
        np_state = np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            random.seed(seed)
            np.random.seed(seed % (2**32 - 1))
            torch.manual_seed(seed)
            try:
                yield
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)


def augment_batch(image: Image.Image, items: list, batch: list, n: int = 9, seed: int = 0) -> torch.Tensor:
    """Run fastai item then batch transforms (training mode) on n copies of image: (n, 3, H, W) floats in [0, 1].

    Item transforms need the same output size for every copy, which Resize and RandomResizedCrop give.
    """
    item_pipe = Pipeline([*items, ToTensor()], split_idx=0)  # PIL -> TensorImage uint8 (3, h, w)
    batch_pipe = Pipeline([IntToFloatTensor(), *batch], split_idx=0)
    pil = PILImage.create(image.convert("RGB"))
    with seeded(seed):
        samples = [item_pipe(pil) for _k in range(n)]  # n x (3, h, w) uint8, each with its own random crop
        x = torch.stack(samples)  # (n, 3, h, w)
        x = batch_pipe(type(samples[0])(x))  # TensorImage (n, 3, size, size) float in [0, 1]
    return x.as_subclass(torch.Tensor).clamp(0, 1)


def augment_grid(image: Image.Image, config: AugConfig, n: int = 9, seed: int = 0) -> list[Image.Image]:
    """n augmented versions of image as fastai's training DataLoader would produce them with config."""
    return [to_pil(t) for t in augment_batch(image, item_tfms(config), batch_tfms(config), n, seed)]


def resize_gallery(
    image: Image.Image, size: int = 224, min_scale: float = 0.35, seed: int = 0
) -> dict[str, Image.Image]:
    """The lesson's side-by-side: Resize with each method and pad mode (validation-time), and RandomResizedCrop."""
    pil = PILImage.create(image.convert("RGB"))
    out: dict[str, Image.Image] = {}
    for method in METHODS:
        modes = PAD_MODES if method == "pad" else ("reflection",)
        for mode in modes:
            name = f"Resize({size}, method='{method}')" if method != "pad" else f"pad, pad_mode='{mode}'"
            tfm = Resize(size, method=method, pad_mode=mode)
            out[name] = Image.fromarray(np.asarray(Pipeline([tfm], split_idx=1)(pil)))
    with seeded(seed):
        crop = Pipeline([RandomResizedCrop(size, min_scale=min_scale)], split_idx=0)
        for k in range(2):
            out[f"RandomResizedCrop(min_scale={min_scale}) #{k + 1}"] = Image.fromarray(np.asarray(crop(pil)))
    return out


def to_pil(x: torch.Tensor) -> Image.Image:
    """(3, H, W) float tensor in [0, 1] -> RGB PIL image."""
    arr = (x.detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def normalise(x: torch.Tensor) -> torch.Tensor:
    """fastai's Normalize.from_stats(*imagenet_stats) on a (B, 3, H, W) batch in [0, 1] (what the model gets)."""
    norm = Normalize.from_stats(*imagenet_stats, cuda=False)
    return norm(TensorImage(x)).as_subclass(torch.Tensor)  # Normalize only acts on TensorImage


def normalised_view(x: torch.Tensor) -> Image.Image:
    """A normalised (3, H, W) tensor shown as an image: its own min..max stretched to 0..255."""
    lo, hi = float(x.min()), float(x.max())
    return to_pil((x - lo) / (hi - lo) if hi > lo else x * 0)


def describe(x: torch.Tensor) -> str:
    """One line on a tensor for a caption: shape and value range."""
    return _("tensor {shape}, min {lo}, max {hi}").format(
        shape=tuple(x.shape), lo=f"{float(x.min()):.2f}", hi=f"{float(x.max()):.2f}"
    )


def channel_histograms(before: torch.Tensor, after: torch.Tensor, bins: int = 60) -> go.Figure:
    """Per-channel histograms of one (3, H, W) image before (0..1) and after ImageNet normalisation."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(_("pixels in [0, 1]"), _("after Normalize (ImageNet stats)")))
    mean, std = np.array(imagenet_stats[0]), np.array(imagenet_stats[1])
    normalised_range = (float((-mean / std).min()), float(((1 - mean) / std).max()))  # about (-2.12, 2.64)
    for col, t, value_range in ((1, before, (0.0, 1.0)), (2, after, normalised_range)):
        for c, (name, colour) in enumerate(CHANNELS):
            # fixed ranges: comparable across images, and a flat colour cannot break the binning
            counts, edges = np.histogram(t[c].double().flatten().numpy(), bins=bins, range=value_range)
            fig.add_trace(
                go.Bar(
                    x=(edges[:-1] + edges[1:]) / 2,
                    y=counts,
                    name=name,
                    marker_color=colour,
                    opacity=0.55,
                    showlegend=col == 1,
                    legendgroup=name,
                ),
                row=1,
                col=col,
            )
    fig.update_layout(barmode="overlay", bargap=0, height=320, margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(title_text=_("value"))
    fig.update_yaxes(title_text=_("pixels"), col=1)
    return fig


def _fmt(value: float) -> str:
    return repr(round(float(value), 4))


def fastai_code(config: AugConfig, n: int = 9, seed: int = 0) -> str:
    """The fastai code producing the grid: a DataBlock for training, and the one-image preview this page runs."""
    if config.presize:
        item = f"Resize({config.item_size})"
    elif config.item_tfm == "random_resized_crop":
        item = f"RandomResizedCrop({config.size}, min_scale={_fmt(config.min_scale)})"
    else:
        item = f"Resize({config.size}, method='{config.method}', pad_mode='{config.pad_mode}')"
    args = [
        f"do_flip={config.do_flip}",
        f"flip_vert={config.flip_vert}",
        f"max_rotate={_fmt(config.max_rotate)}",
        f"max_zoom={_fmt(config.max_zoom)}",
        f"max_warp={_fmt(config.max_warp)}",
        f"max_lighting={_fmt(config.max_lighting)}",
        f"p_affine={_fmt(config.p_affine)}",
        f"p_lighting={_fmt(config.p_lighting)}",
        f"pad_mode='{config.pad_mode}'",
    ]
    if config.presize:
        args = [f"size={config.size}", f"min_scale={_fmt(config.min_scale)}", *args]
    aug = "aug_transforms(\n    " + ",\n    ".join(args) + ",\n)"
    return f"""import random

import numpy as np
import torch
from fastai.data.block import CategoryBlock, DataBlock
from fastai.data.transforms import IntToFloatTensor, RandomSplitter, RegexLabeller, ToTensor, get_image_files
from fastai.vision.augment import RandomResizedCrop, Resize, aug_transforms
from fastai.vision.core import PILImage
from fastai.vision.data import ImageBlock
from fastcore.basics import using_attr
from fasttransform import Pipeline
from PIL import Image

item_tfms = [{item}]
batch_tfms = {aug}

# Training: the same transforms in a DataBlock (path = your images folder)
# pets = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files,
#                  splitter=RandomSplitter(seed=42),
#                  get_y=using_attr(RegexLabeller(r"^(.+)_\\d+\\.jpg$"), "name"),  # the file name, as from_name_re
#                  item_tfms=item_tfms, batch_tfms=batch_tfms)
# dls = pets.dataloaders(path, bs=32)
# dls.train.show_batch(max_n={n}, nrows=3, unique=True)

# The preview on this page: {n} copies of one image, training mode (split_idx=0), seed {seed}
def preview(image: Image.Image):
    random.seed({seed}); np.random.seed({seed}); torch.manual_seed({seed})
    pil = PILImage.create(image.convert("RGB"))
    item_pipe = Pipeline([*item_tfms, ToTensor()], split_idx=0)
    samples = [item_pipe(pil) for _ in range({n})]             # {n} x (3, h, w) uint8
    x = type(samples[0])(torch.stack(samples))                  # TensorImage ({n}, 3, h, w)
    batch_pipe = Pipeline([IntToFloatTensor(), *batch_tfms], split_idx=0)
    return batch_pipe(x)                                        # ({n}, 3, {config.size}, {config.size}) in [0, 1]
"""


def training_batch(paths: list[str], size: int, augment: bool, seed: int = 0) -> list[Image.Image]:
    """What `dls.show_batch()` shows for these images: fastai's training item and batch transforms, seeded.

    Each image gets `Resize(size)` as a training item (a random crop position), then the batch gets
    `aug_transforms(size=size)` when augmenting: the pipeline core.train.learners.make_dls trains with.
    """
    item_pipe = Pipeline([Resize(size), ToTensor()], split_idx=0)
    batch_pipe = Pipeline([IntToFloatTensor(), *(aug_transforms(size=size) if augment else [])], split_idx=0)
    with seeded(seed):
        samples = [item_pipe(PILImage.create(path)) for path in paths]  # (3, size, size) uint8 each
        x = batch_pipe(type(samples[0])(torch.stack(samples)))  # (n, 3, size, size) float in [0, 1]
    return [to_pil(t) for t in x.as_subclass(torch.Tensor).clamp(0, 1)]
