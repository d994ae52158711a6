"""Cached wrappers for the Augmentation page (keys: image digest, config, seed)."""

from __future__ import annotations

import streamlit as st
import torch
from PIL import Image

from core.data import augmentation
from core.data.augmentation import AugConfig

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
