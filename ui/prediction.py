"""Cached wrappers for the Prediction page: Grad-CAM under the model lock, the run's kNN reference."""

from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st
from PIL import Image

from core import novelty, prediction, records
from core.images import ImageError, load_image_file
from core.models import WEIGHTS_FILE, LoadedModel
from core.novelty import NoveltySpec, Reference
from core.settings import sub_dir
from ui.runs import features_dir
from ui.state import MODEL_LOCK, runs_dir, scan_active

SPEC = NoveltySpec()  # k = 5 neighbours, line at 95 % of validation images, ≤ 600 + 300 images


def model_key(loaded: LoadedModel) -> str:
    """A cache key naming this exact loaded model (a reloaded run gets a new key)."""
    return f"{loaded.kind}:{loaded.run_id or loaded.arch}:{id(loaded.model)}"


@st.cache_data(max_entries=256, show_spinner=False)
def predicted(
    key: str,
    digest: str,
    rule: prediction.NotSureRule,
    reference_key: str,
    _loaded: LoadedModel,
    _image: Image.Image,
    _reference: Reference | None,
) -> prediction.Prediction:
    """The photo's top-5 and not-sure verdict, once per (model, photo, rule): a rerun of the page (another
    photo added, a toggle) does not run the forward again for photos already shown."""
    return prediction.predict(_loaded, _image, k=5, rule=rule, reference=_reference)


def reference_key(reference: Reference | None) -> str:
    """Names the reference a prediction used by its content (st.cache_data hands out copies, so not by id)."""
    if reference is None:
        return "none"
    digest = hashlib.blake2b(reference.features.tobytes(), digest_size=8).hexdigest()
    return f"{digest}:{reference.threshold!r}:{reference.k}:{reference.in_rate!r}:{reference.held_out}"


@st.cache_data(max_entries=64, show_spinner="Grad-CAM…")
def gradcam(key: str, digest: str, class_idx: int, _loaded: LoadedModel, _image: Image.Image) -> Image.Image:
    """Grad-CAM overlay for class_idx; the shared model is used under MODEL_LOCK (hooks are added and removed)."""
    with MODEL_LOCK:
        return prediction.explain(_loaded, _image, class_idx)


@st.cache_data(max_entries=8, show_spinner=False)
def _reference(
    path: str, train: tuple[tuple[str, str], ...], valid: tuple[tuple[str, str], ...], _loaded: LoadedModel
) -> Reference | None:
    """The run's reference from its disk cache, else built once from the dataset's images and cached."""

    def open_image(p: str) -> Image.Image | None:
        try:
            return load_image_file(Path(p)).image
        except ImageError:
            return None

    def build() -> Reference:
        try:  # a fast run's training already computed these features: read them instead
            record = records.read_record(runs_dir() / _loaded.run_id)
            cached = novelty.reference_from_run(features_dir(), record, _loaded.model, SPEC)
        except (OSError, ValueError):
            cached = None
        if cached is not None:
            return cached
        n = min(len(train), SPEC.max_reference) + min(len(valid), SPEC.max_calibration)
        with st.spinner(f"Computing the run's reference features once ({n} images; cached on disk)…"):
            feature_fn = novelty.body_features(_loaded.model)
            return novelty.build_reference(feature_fn, _loaded.img_size, train, valid, SPEC, open_image)

    try:
        return novelty.cached_reference(Path(path), build)[0]
    except ValueError:
        return None


def novelty_reference(loaded: LoadedModel) -> tuple[Reference | None, str]:
    """A run's kNN reference (training features + calibrated line), and what it is or why there is none.

    Cached on disk per run; building it needs the active dataset to have the run's classes.
    """
    if loaded.kind != "run" or not loaded.run_id:
        return None, "only for a fine-tuned run: the ImageNet model's training images (ImageNet) are not here"
    path = novelty.cache_path(
        sub_dir(novelty.NOVELTY_DIR), loaded.run_id, runs_dir() / loaded.run_id / WEIGHTS_FILE, SPEC
    )
    train: tuple[tuple[str, str], ...] = ()
    valid: tuple[tuple[str, str], ...] = ()
    if not path.is_file():
        result = scan_active()
        if result is None or sorted(result.classes) != sorted(loaded.classes):
            return None, "the active dataset's classes differ from the run's, so its images cannot calibrate it"
        items = result.items
        pairs = list(zip(items["path"].astype(str), items["label"].astype(str), items["is_valid"], strict=True))
        train = tuple((p, lab) for p, lab, v in pairs if not v)
        valid = tuple((p, lab) for p, lab, v in pairs if v)
    reference = _reference(str(path), train, valid, loaded)
    if reference is None:
        return None, "no readable training image to compare photos with"
    return reference, reference.describe()
