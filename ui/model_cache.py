"""The models every tab shares, loaded once per server (st.cache_resource): read-only, eval mode, never trained.

Hook-based work on one of them (activations, Grad-CAM, a private copy) takes MODEL_LOCK.
"""

from __future__ import annotations

import threading
from pathlib import Path

import streamlit as st

from core.i18n import _
from core.nets import models
from core.store import runs

# A model held by st.cache_resource is shared by every tab: hook-based work on it takes this lock.
MODEL_LOCK = threading.Lock()


@st.cache_resource(max_entries=4, show_spinner=False)
def _cached_run_model(run_dir: str, stamp: float) -> models.LoadedModel:
    return runs.load_run_model(Path(run_dir))


def cached_run_model(run_dir: str, stamp: float) -> models.LoadedModel:
    """A run's model, shared by every tab: read-only, eval mode, never trained in place."""
    with st.spinner(_("Loading the fine-tuned model…")):  # shown only when loading takes over half a second
        return _cached_run_model(run_dir, stamp)


@st.cache_resource(max_entries=6, show_spinner=False)
def _cached_imagenet(arch: str, pretrained: bool) -> models.LoadedModel:
    return models.load_imagenet(arch, pretrained)


def cached_imagenet(arch: str, pretrained: bool = True) -> models.LoadedModel:
    """The ImageNet classifier (or random init), shared by every tab: read-only."""
    with st.spinner(_("Loading the ImageNet model…")):
        return _cached_imagenet(arch, pretrained)
