"""Cached wrappers and widget helpers for the Data page."""

from __future__ import annotations

import streamlit as st
from PIL import Image

from core import exploration, labels
from core.datasets import list_image_files
from core.labels import LabelResult


@st.cache_data(max_entries=2000, show_spinner=False)
def thumbnail(path: str, side: int = 160, mtime: float = 0.0) -> Image.Image:
    """Cached centre-cropped thumbnail; mtime in the key refreshes it when the file changes."""
    return exploration.thumbnail(path, side)


@st.cache_data(max_entries=32, show_spinner=False)
def file_list(root: str, signature: str) -> list[str]:
    """Cached list of image files (relative paths) under root."""
    return list_image_files(root)


@st.cache_data(max_entries=64, show_spinner=False)
def try_labels(rel_paths: tuple[str, ...], pattern: str, match_on: str) -> LabelResult:
    """Cached labelling; raises LabelError for a pattern that cannot be used."""
    return labels.label_files(list(rel_paths), pattern, match_on)
