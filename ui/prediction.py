"""Cached wrappers for the Prediction page: Grad-CAM under the model lock, energy calibration."""

from __future__ import annotations

import random
from pathlib import Path

import streamlit as st
from PIL import Image

from core import prediction
from core.images import ImageError, load_image_file
from core.models import LoadedModel
from ui.state import MODEL_LOCK, scan_active

CALIBRATION_IMAGES = 24


def model_key(loaded: LoadedModel) -> str:
    """A cache key naming this exact loaded model (a reloaded run gets a new key)."""
    return f"{loaded.kind}:{loaded.run_id or loaded.arch}:{id(loaded.model)}"


@st.cache_data(max_entries=64, show_spinner="Grad-CAM…")
def gradcam(key: str, digest: str, class_idx: int, _loaded: LoadedModel, _image: Image.Image) -> Image.Image:
    """Grad-CAM overlay for class_idx; the shared model is used under MODEL_LOCK (hooks are added and removed)."""
    with MODEL_LOCK:
        return prediction.explain(_loaded, _image, class_idx)


@st.cache_data(max_entries=8, show_spinner="Calibrating 'unlike the training data' on training images…")
def _energy_line(key: str, paths: tuple[str, ...], _loaded: LoadedModel) -> float | None:
    images = []
    for path in paths:
        try:
            images.append(load_image_file(Path(path)).image)
        except ImageError:
            continue
    return prediction.calibrate_energy(_loaded, images) if images else None


def energy_line(loaded: LoadedModel) -> tuple[float | None, str]:
    """The calibrated energy threshold for a run whose classes match the active dataset, and why (not)."""
    if loaded.kind != "run":
        return None, "only for a fine-tuned run: the ImageNet model's training images (ImageNet) are not here"
    result = scan_active()
    if result is None or sorted(result.classes) != sorted(loaded.classes):
        return None, "the active dataset's classes differ from the run's, so its images cannot calibrate it"
    items = result.items
    train = items[~items["is_valid"]] if "is_valid" in items and (~items["is_valid"]).any() else items
    paths = sorted(train["path"].astype(str))
    sample = tuple(random.Random(0).sample(paths, min(CALIBRATION_IMAGES, len(paths))))
    line = _energy_line(model_key(loaded), sample, loaded)
    if line is None:
        return None, "no readable training image to calibrate on"
    return line, f"calibrated on {len(sample)} training images of {loaded.label}"
