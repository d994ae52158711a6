"""Session-wide state every page shares: the data folder, the active dataset, the active model."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import streamlit as st

from core import datasets, models, pets, runs
from core.datasets import DatasetScan, DatasetSpec
from core.labels import PETS_PATTERN
from core.settings import data_dir, sub_dir

ACTIVE_DATASET = "active_dataset"
ACTIVE_RUN = "active_run"
DEFAULT_ARCH_KEY = "imagenet_arch"
# A model held by st.cache_resource is shared by every tab: hook-based work on it takes this lock.
MODEL_LOCK = threading.Lock()


def env_dataset() -> DatasetSpec | None:
    """A folder named by $PETLAB_DATASET (a teacher's class server, the browser tests)."""
    folder = os.environ.get("PETLAB_DATASET")
    if not folder:
        return None
    label_from = os.environ.get("PETLAB_LABEL", "regex")
    return DatasetSpec(
        name=Path(folder).name,
        kind="folder",
        root=str(Path(folder).resolve()),
        label_from=label_from,
        pattern=PETS_PATTERN,
    )


def active_dataset() -> DatasetSpec | None:
    """The dataset this browser session works on: chosen on the Data page, else $PETLAB_DATASET, else Pets if present."""
    if ACTIVE_DATASET not in st.session_state:
        spec = env_dataset()
        if spec is None:
            images = pets.find_pets(data_dir())
            spec = pets.pets_spec(images) if images else None
        st.session_state[ACTIVE_DATASET] = spec
    return st.session_state[ACTIVE_DATASET]


def set_active_dataset(spec: DatasetSpec | None) -> None:
    st.session_state[ACTIVE_DATASET] = spec


@st.cache_data(max_entries=16, show_spinner="Scanning images (headers only)…")
def scan(spec: DatasetSpec, signature: str) -> DatasetScan:
    """Cached scan_dataset; `signature` (names, sizes, mtimes) invalidates it when files change."""
    return datasets.scan_dataset(spec)


def scan_active() -> DatasetScan | None:
    """Scan of the active dataset, or None (with the error shown) when it cannot be scanned."""
    spec = active_dataset()
    if spec is None:
        return None
    try:
        return scan(spec, datasets.folder_signature(Path(spec.root)))
    except (datasets.DatasetError, ValueError) as err:
        st.error(f"The active dataset cannot be read: {err}")
        return None


def runs_dir() -> Path:
    return sub_dir("runs")


@st.cache_resource(max_entries=4, show_spinner="Loading the fine-tuned model…")
def cached_run_model(run_dir: str, stamp: float) -> models.LoadedModel:
    """A run's model, shared by every tab: read-only, eval mode, never trained in place."""
    return models.load_run_model(Path(run_dir))


@st.cache_resource(max_entries=6, show_spinner="Loading the ImageNet model…")
def cached_imagenet(arch: str, pretrained: bool = True) -> models.LoadedModel:
    """The ImageNet classifier (or random init), shared by every tab: read-only."""
    return models.load_imagenet(arch, pretrained)


def active_run_dir() -> Path | None:
    run_id = st.session_state.get(ACTIVE_RUN)
    if not run_id:
        return None
    path = runs_dir() / run_id
    return path if (path / models.WEIGHTS_FILE).is_file() else None


def active_model() -> models.LoadedModel:
    """The active fine-tuned run if one is chosen, else the offline ImageNet-pretrained mobilenet_v2."""
    run_dir = active_run_dir()
    if run_dir is not None:
        try:
            return cached_run_model(str(run_dir), (run_dir / models.WEIGHTS_FILE).stat().st_mtime)
        except Exception as err:  # a broken run never takes the page down
            st.warning(f"Run {run_dir.name} could not be loaded ({err}); using the ImageNet model instead.")
    return cached_imagenet(st.session_state.get(DEFAULT_ARCH_KEY, "mobilenet_v2"))


def active_model_title() -> str:
    """One line naming the model pages will use: the active run's title, else the ImageNet default."""
    run_dir = active_run_dir()
    if run_dir is None:
        return f"ImageNet-pretrained {st.session_state.get(DEFAULT_ARCH_KEY, 'mobilenet_v2')} (no run chosen)"
    try:
        record = runs.read_record(run_dir)
    except (ValueError, OSError):
        return f"run {run_dir.name} (record unreadable)"
    return f"{record.title or record.arch} · run `{run_dir.name[:8]}`"


def sidebar(slot=None) -> None:
    """The shared sidebar: active dataset and active model, drawn into `slot` (an st.sidebar.empty()).

    app.py draws it before the page and again after it, so a dataset or run chosen by this very
    run shows at once (a page that stops early keeps the first drawing).
    """
    with slot.container() if slot is not None else st.sidebar:
        st.markdown("### 🐾 Pet Lab")
        spec = active_dataset()
        if spec is None:
            st.info("No dataset yet: choose one on the **Data** page.")
        else:
            result = scan_active()
            if result is not None:
                st.markdown(f"**Dataset:** {spec.name}")
                c1, c2 = st.columns(2)
                c1.metric("images", f"{result.n_images:,}")
                c2.metric("classes", len(result.classes))
        st.markdown(f"**Model:** {active_model_title()}")
        st.caption(f"Data folder: `{data_dir()}`")
