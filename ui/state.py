"""What this tab works on: the active dataset (and its cached scan), the active run, the active model.

Each is chosen on a page, kept in the tab's store (ui.tab_store) across page changes and reloads, and
in class mode follows the teacher's newest class dataset and model (follow_class).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import streamlit as st

from core import codec
from core.data import datasets, pets
from core.data.datasets import DatasetScan, DatasetSpec
from core.data.labels import PETS_PATTERN
from core.i18n import N_, _, current
from core.nets import models
from core.settings import RUNS_DIR, data_dir, sub_dir
from core.store import records
from core.store.signatures import dataset_signature
from core.teach.classroom import ClassSettings, read_class_settings, run_visible
from core.teach.roster import markdown_safe
from ui.auth import identity
from ui.model_cache import cached_imagenet, cached_run_model
from ui.tab_store import recall, remember, tab_values

ACTIVE_DATASET = "active_dataset"
ACTIVE_RUN = "active_run"
OWN_CLASSES_NAME = N_("Your own classes")  # the name of the Data page's own-classes dataset, shown translated


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


def server_default_dataset() -> DatasetSpec | None:
    """The server's default dataset: $PETLAB_DATASET, else Oxford-IIIT Pet when it is in the data folder."""
    spec = env_dataset()
    if spec is None:
        images = pets.find_pets(data_dir())
        spec = pets.pets_spec(images) if images else None
    return spec


def class_dataset(settings: ClassSettings | None = None) -> DatasetSpec | None:
    """Everyone's default: the teacher's class dataset (class mode), else the server's default."""
    settings = settings or read_class_settings(data_dir())
    return settings.dataset or server_default_dataset()


def active_dataset() -> DatasetSpec | None:
    """The dataset this browser tab works on: chosen on the Data page (kept across reloads), else the class's."""
    if ACTIVE_DATASET not in st.session_state:
        spec = _spec_from_plain(recall(ACTIVE_DATASET))
        if spec is not None and not _visible_here(spec):
            spec = None  # another student's private classes (a copied tab's setting): never this tab's
        st.session_state[ACTIVE_DATASET] = spec if spec is not None else class_dataset()
    return st.session_state[ACTIVE_DATASET]


CLASS_SEEN = "class_seen"  # the teacher's choices this tab has followed (ClassSeen, kept in the tab's store)


@dataclass(frozen=True)
class ClassSeen:
    """The teacher's choices a tab has followed: when the class dataset and model last changed, and the model."""

    dataset: float = 0.0  # ClassSettings.dataset_changed
    model: float = 0.0  # ClassSettings.model_changed
    run: str | None = None  # ClassSettings.model_run

    @classmethod
    def recalled(cls, value: Any) -> ClassSeen | None:
        """The kept value parsed back, or None for a new tab (or a value that is not one)."""
        try:
            return codec.parse_dataclass(cls, value, CLASS_SEEN)
        except ValueError:  # a RecordError
            return None


def follow_class(announce: bool = True) -> None:
    """Make the teacher's newest class dataset and model this tab's (class mode; once per full run, cheap).

    The newest decision wins: a tab that chose its own dataset keeps it until the teacher changes the
    class dataset, then it follows (and says so in a toast); the student can switch back on the Data
    page. Publishing a class model makes it everyone's active model; unpublishing it moves only the
    tabs still on it back to the ImageNet model. A new tab starts on the class's choices.
    """
    settings = read_class_settings(data_dir())
    now = ClassSeen(settings.dataset_changed, settings.model_changed, settings.model_run)
    seen = st.session_state.get(CLASS_SEEN) or ClassSeen.recalled(recall(CLASS_SEEN))
    if seen is None:
        seen = now  # a new tab: active_dataset() and sync_active_run() start on the class's choices
    else:
        if settings.dataset_changed > seen.dataset:
            spec = class_dataset(settings)
            set_active_dataset(spec)
            if spec is not None and announce:
                st.toast(_("Class dataset: **{name}**").format(name=markdown_safe(shown_name(spec))),
                         icon=":material/school:")  # fmt: skip
        if settings.model_changed > seen.model:
            if settings.model_run is not None:
                st.session_state[ACTIVE_RUN] = settings.model_run
                if announce:
                    st.toast(_("The teacher published a class model: it is now your active model."),
                             icon=":material/school:")  # fmt: skip
            elif st.session_state.get(ACTIVE_RUN, recall(ACTIVE_RUN)) == seen.run:
                st.session_state[ACTIVE_RUN] = None  # the withdrawn class model: back to ImageNet
        seen = now
    st.session_state[CLASS_SEEN] = seen
    if tab_values():  # a tab that keeps anything keeps this too; one that did nothing writes nothing
        remember(CLASS_SEEN, codec.to_json(seen))


def _visible_here(spec: DatasetSpec) -> bool:
    """False for a dataset in another student's private space (class mode); the teacher sees every one."""
    return run_visible(spec.root, identity(), data_dir())


def shown_name(spec: DatasetSpec) -> str:
    """A dataset's name as shown: the own-classes dataset's name is translated, others are folder names."""
    return _(spec.name) if spec.kind == "own" and spec.name == OWN_CLASSES_NAME else spec.name


def set_active_dataset(spec: DatasetSpec | None) -> None:
    st.session_state[ACTIVE_DATASET] = spec
    remember(ACTIVE_DATASET, codec.to_json(spec) if spec is not None else None)


def _spec_from_plain(value: Any) -> DatasetSpec | None:
    """A DatasetSpec back from its stored dict (the one parser); None for anything that is not exactly one."""
    if not isinstance(value, dict) or set(value) != {f.name for f in fields(DatasetSpec)}:
        return None  # a spec of another layout (older or newer): the class's dataset instead
    try:
        return codec.parse_dataclass(DatasetSpec, value, ACTIVE_DATASET)
    except ValueError:  # a RecordError: a field of the wrong type
        return None


@st.cache_data(max_entries=16, show_spinner=False)  # the spinner is scan_active's (in the tab's language)
def scan(spec: DatasetSpec, signature: str, lang: str = "en") -> DatasetScan:
    """Cached scan_dataset; `signature` (names, sizes, mtimes) invalidates it when files change.

    `lang` is in the key because the scan's reasons for skipped files are written in the tab's language.
    """
    return datasets.scan_dataset(spec)


def scan_of(spec: DatasetSpec) -> DatasetScan:
    """The cached scan of any dataset (raises datasets.DatasetError or ValueError when it cannot be read)."""
    return scan(spec, dataset_signature(Path(spec.root)), current().lang)


def scan_active() -> DatasetScan | None:
    """Scan of the active dataset, or None (with the error shown) when it cannot be scanned."""
    spec = active_dataset()
    if spec is None:
        return None
    try:
        with st.spinner(_("Scanning images (headers only)…")):
            return scan_of(spec)
    except (datasets.DatasetError, ValueError) as err:
        st.error(_("The active dataset cannot be read: {error}").format(error=err))
        return None


def runs_dir() -> Path:
    return sub_dir(RUNS_DIR)


def sync_active_run() -> str | None:
    """The active run id, restored after a reload and saved whenever a page changed it."""
    if ACTIVE_RUN not in st.session_state:
        restored = recall(ACTIVE_RUN)
        if not isinstance(restored, str):
            restored = read_class_settings(data_dir()).model_run  # class mode: the published class model
        st.session_state[ACTIVE_RUN] = restored
    elif st.session_state[ACTIVE_RUN] != recall(ACTIVE_RUN):
        remember(ACTIVE_RUN, st.session_state[ACTIVE_RUN])
    return st.session_state[ACTIVE_RUN]


def active_run_dir() -> Path | None:
    run_id = sync_active_run()
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
            st.warning(
                _("Run {run} could not be loaded ({error}); using the ImageNet model instead.").format(
                    run=run_dir.name, error=err
                )
            )
    return cached_imagenet(models.OFFLINE_ARCH)


def active_model_title() -> str:
    """One line naming the model pages will use: the active run's title, else the ImageNet default."""
    run_dir = active_run_dir()
    if run_dir is None:
        return _("ImageNet-pretrained {arch} (no run chosen)").format(arch=models.OFFLINE_ARCH)
    try:
        record = records.read_record(run_dir)
    except (ValueError, OSError):
        return _("run {run} (record unreadable)").format(run=run_dir.name)
    return _("{title} · run `{run}`").format(title=record.shown_title() or record.arch, run=run_dir.name[:8])
