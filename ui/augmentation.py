"""The Augmentation page's parts: the transforms' controls, the samples grid, the gallery, what the model receives,
and their cached computations (keys: image digest, config, seed)."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
import torch
from PIL import Image

from core.data import augmentation
from core.data.augmentation import AugConfig
from core.data.images import LoadedImage
from core.i18n import _
from ui.tab_store import keep

GALLERY_COLUMNS = 4  # 7 views in 2 rows: at 7 in a row the captions' code broke mid-word ("reflecti / on'")


def code_caption(code: str) -> str:
    """A caption of code that may wrap after '(' or ',' (a zero-width space) rather than inside a word."""
    return code.replace("(", "(\u200b").replace(",", ",\u200b")


@st.cache_data(max_entries=64, show_spinner=False)  # the page's spinner says it in the tab's language
def grid(
    digest: str, config: AugConfig, n: int, seed: int, _image: Image.Image
) -> tuple[list[Image.Image], torch.Tensor, torch.Tensor]:
    """n augmented samples, and the first one as a tensor before and after normalisation, (3, H, W) each."""
    batch = augmentation.augment_batch(
        _image, augmentation.item_tfms(config), augmentation.batch_tfms(config), n, seed
    )  # (n, 3, size, size)
    normalised = augmentation.normalise(batch[:1])[0]  # (3, size, size), what the model receives
    return [augmentation.to_pil(t) for t in batch], batch[0].clone(), normalised


@st.cache_data(max_entries=32, show_spinner=False)
def gallery(digest: str, size: int, min_scale: float, seed: int, _image: Image.Image) -> dict[str, Image.Image]:
    """The Resize methods / pad modes / RandomResizedCrop gallery of one image."""
    return augmentation.resize_gallery(_image, size, min_scale, seed)


SEED = "aug_seed"  # the samples' seed (a number input, kept with the tab; New samples moves it on)
SIZES = [128, 160, 192, 224, 256, 320]
ROWS = [2, 3, 4]


def seed_state() -> None:
    """Declare the samples' seed before anything can end the page (0 at first): kept across reloads, and
    forgotten with the other undrawn controls when the page ends early (ui.tab_store.stop_page)."""
    keep(SEED)
    st.session_state.setdefault(SEED, 0)


def _new_samples() -> None:
    st.session_state[SEED] += 1


def controls_ui() -> AugConfig:
    """The item transforms (per image) and the batch transforms (`aug_transforms`); returns their AugConfig."""
    st.markdown(_("##### Item transforms (per image, CPU)"))
    presize = st.toggle(
        _("Presizing (the lesson's recipe)"),
        value=True,
        key=keep("aug_presize"),
        help=_(
            "Resize every image to a large square first (item transform), then augment and crop to the final "
            "size in one go on the batch: fewer interpolations, fewer empty borders."
        ),
    )
    size = st.select_slider(_("Final size (px)"), SIZES, value=224, key=keep("aug_size", options=SIZES))
    item_size, item_tfm, method = 460, "resize", "crop"
    if presize:
        item_size = st.slider(_("Item Resize size (px)"), 256, 640, 460, 4, key=keep("aug_item_size"))
    else:
        item_tfm = st.radio(
            _("Item transform"),
            ["resize", "random_resized_crop"],
            format_func={"resize": "Resize", "random_resized_crop": "RandomResizedCrop"}.get,
            horizontal=True,
            key=keep("aug_item_tfm"),
        )
        if item_tfm == "resize":
            method = st.radio(_("Resize method"), augmentation.METHODS, horizontal=True,
                              key=keep("aug_method", options=augmentation.METHODS))  # fmt: skip
    pad_mode = st.radio(_("Padding mode (pad resize and warps)"), augmentation.PAD_MODES, horizontal=True,
                        key=keep("aug_pad_mode", options=augmentation.PAD_MODES))  # fmt: skip
    min_scale = st.slider(
        _("min_scale (smallest crop, share of the image area)"), 0.08, 1.0, 0.75, 0.01, key=keep("aug_min_scale")
    )

    st.markdown(_("##### Batch transforms: `aug_transforms`"))
    c1, c2 = st.columns(2)
    do_flip = c1.checkbox("do_flip", value=True, key=keep("aug_do_flip"))
    flip_vert = c2.checkbox("flip_vert", value=False, key=keep("aug_flip_vert"))
    max_rotate = st.slider(_("max_rotate (degrees)"), 0.0, 45.0, 10.0, 1.0, key=keep("aug_max_rotate"))
    max_zoom = st.slider("max_zoom", 1.0, 2.0, 1.1, 0.05, key=keep("aug_max_zoom"))
    max_warp = st.slider("max_warp", 0.0, 0.6, 0.2, 0.05, key=keep("aug_max_warp"))
    max_lighting = st.slider("max_lighting", 0.0, 0.9, 0.2, 0.05, key=keep("aug_max_lighting"))
    p_affine = st.slider(
        _("p_affine (chance of flip/rotate/zoom/warp)"), 0.0, 1.0, 0.75, 0.05, key=keep("aug_p_affine")
    )
    p_lighting = st.slider(
        _("p_lighting (chance of brightness/contrast)"), 0.0, 1.0, 0.75, 0.05, key=keep("aug_p_lighting")
    )
    return AugConfig(size=size, presize=presize, item_size=item_size, item_tfm=item_tfm, method=method,
                     pad_mode=pad_mode, min_scale=min_scale, do_flip=do_flip, flip_vert=flip_vert,
                     max_rotate=max_rotate, max_zoom=max_zoom, max_warp=max_warp, max_lighting=max_lighting,
                     p_affine=p_affine, p_lighting=p_lighting)  # fmt: skip


@dataclass(frozen=True)
class Samples:
    """The grid the page shows: how many, which seed, and its first sample before and after normalisation."""

    n: int
    seed: int
    first: torch.Tensor  # (3, size, size) in [0, 1]
    normalised: torch.Tensor  # (3, size, size), what the model receives


def samples_ui(photo: LoadedImage, config: AugConfig) -> Samples:
    """The grid size, the seed and New samples, then the grid of augmented training samples of the photo."""
    c1, c2, c3 = st.columns([1, 1, 1.2])
    rows = c1.select_slider(_("Grid"), ROWS, value=3, format_func=lambda r: f"{r}×{r}", key=keep("aug_rows",
                                                                                               options=ROWS))  # fmt: skip
    c2.number_input(_("Seed"), 0, 1_000_000, key=SEED)
    c3.button(_("🎲 New samples"), on_click=_new_samples, key="aug_new", width="stretch")
    seed = int(st.session_state[SEED])
    with st.spinner(_("Augmenting with fastai's transforms…")):
        samples, first, normalised = grid(photo.digest, config, rows * rows, seed, photo.image)
    st.caption(
        _("{n} training samples of the same photo, {size}×{size} px, seed {seed}.").format(
            n=rows * rows, size=config.size, seed=seed
        )
    )
    for r in range(rows):
        for c, col in enumerate(st.columns(rows)):
            col.image(samples[r * rows + c], width="stretch")
    return Samples(rows * rows, seed, first, normalised)


def gallery_ui(photo: LoadedImage, config: AugConfig, seed: int) -> None:
    """Every resize method and padding mode, and RandomResizedCrop, on the photo."""
    views = gallery(photo.digest, config.size, min(config.min_scale, 0.5), seed, photo.image)
    cols = st.columns(GALLERY_COLUMNS)  # wide enough that a caption's code breaks only where it may
    for i, (name, img) in enumerate(views.items()):
        cols[i % GALLERY_COLUMNS].image(img, caption=code_caption(name), width="stretch")


def model_input_ui(samples: Samples) -> None:
    """The first sample in [0, 1] and after ImageNet normalisation, with both histograms."""
    c1, c2 = st.columns([1, 2.4])
    c1.image(augmentation.to_pil(samples.first), caption=_("first sample, pixels in [0, 1]"), width="stretch")
    c1.image(augmentation.normalised_view(samples.normalised), caption=augmentation.describe(samples.normalised),
             width="stretch")  # fmt: skip
    c2.plotly_chart(augmentation.channel_histograms(samples.first, samples.normalised), key="aug_hist")
