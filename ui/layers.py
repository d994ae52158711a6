"""Cached wrappers for the Layers page: every hook-based call on a shared model takes MODEL_LOCK."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
import torch
from PIL import Image

from core.data.datasets import DatasetSpec
from core.i18n import N_, _, n_, pct, translated_columns
from core.inside import activations, filters, occlusion, patches, projection, receptive_field
from core.inside.gradcam import grad_cam, overlay
from core.nets import models
from core.nets.models import LoadedModel, WeightsUnavailable
from core.settings import data_dir
from core.store.records import EventKind
from core.teach import job_records, jobs
from ui.auth import identity
from ui.executor import run_job_ui
from ui.heavy import heavy_work_ui
from ui.jobs import job_progress_ui, jobs_for, last_failure, submit_shared_ui
from ui.model_cache import MODEL_LOCK, cached_imagenet
from ui.progress import LiveBar

RANDOM_SEED = models.RANDOM_INIT_SEED
TOP_K = patches.TOP_K
SCAN_IMAGES = patches.PAGE_IMAGES
_RUN_IDS: dict[tuple[str | None, int], str] = {}  # (run id, id of the loaded model) -> weights checksum id


def model_id(loaded: LoadedModel) -> str:
    """A name for this model's weights that is stable across restarts (keys the on-disk patch index)."""
    if loaded.kind == "run":
        key = (loaded.run_id, id(loaded.model))
        if key not in _RUN_IDS:
            _RUN_IDS[key] = patches.model_key(loaded.model, "run", loaded.arch, loaded.run_id)
        return _RUN_IDS[key]
    return patches.model_key(loaded.model, loaded.kind, loaded.arch, seed=RANDOM_SEED)


def imagenet_or_message(arch: str, pretrained: bool = True) -> tuple[LoadedModel | None, str | None]:
    """The shared ImageNet (or seeded random-init) model, or the reason it cannot be had."""
    try:
        return (cached_imagenet(arch, True) if pretrained else cached_imagenet(arch, False)), None
    except WeightsUnavailable as err:  # (its message is in the current language, see core.nets.models)
        return None, str(err)


@dataclass(frozen=True)
class StageInfo:
    label: str
    path: str
    shape: tuple[int, ...]
    field: receptive_field.ReceptiveField


def stage_infos(arch: str, size: int) -> list[StageInfo]:
    """Output shape (dummy forward) and receptive field of every stage of arch (weights do not matter)."""
    with st.spinner(_("Measuring each stage: shapes and receptive fields…")):
        return _stage_infos(arch, size)


@st.cache_data(max_entries=8, show_spinner=False)
def _stage_infos(arch: str, size: int) -> list[StageInfo]:
    loaded = cached_imagenet(arch, False)
    paths = [p for _label, p in models.ARCHS[arch].stages]
    with MODEL_LOCK:
        shapes = activations.stage_shapes(loaded.model, paths, size)
        fields = receptive_field.receptive_fields(loaded.model, paths, size)
    return [StageInfo(label, p, shapes[p], fields[p]) for label, p in models.ARCHS[arch].stages]


def stage_table(infos: list[StageInfo]) -> pd.DataFrame:
    """The stage picker's table: shape as the students will see it in code, and receptive field (translated)."""
    table = pd.DataFrame(
        {
            N_("stage"): [_(i.label) for i in infos],
            N_("output shape"): [f"(B, {', '.join(str(d) for d in i.shape[1:])})" for i in infos],
            N_("receptive field (px)"): [i.field.size for i in infos],
            N_("step between units (px)"): [int(i.field.jump) for i in infos],
        }
    )
    return translated_columns(table)


CHANNEL_COUNTS = (16, 32, 64)  # how many channels the feature-map grid can show


def channel_counts(n_channels: int) -> list[int]:
    """The grid sizes to offer for a stage with n_channels: 16, 32, 64, never more than the stage has.

    A 24-channel stage (mobilenet_v2 features.3) offers 16 and 24, not 32 and 64 that would show 24.
    """
    return sorted({min(n, n_channels) for n in CHANNEL_COUNTS})


def image_tensor(image: Image.Image, size: int) -> torch.Tensor:
    return models.preprocess(image, size)  # (1, 3, size, size)


def model_view(image: Image.Image, size: int) -> Image.Image:
    """The square crop the model actually sees, for overlays."""
    return Image.fromarray(models.denormalise(image_tensor(image, size)[0]))


def feature_maps(
    mid: str, stage: str, digest: str, size: int, loaded: LoadedModel, image: Image.Image
) -> tuple[np.ndarray, np.ndarray]:
    """(C, h, w) activation of `stage` and the class probabilities, from one hooked forward pass."""
    with st.spinner(_("Running the image through the network…")):
        return _feature_maps(mid, stage, digest, size, loaded, image)


@st.cache_data(max_entries=24, show_spinner=False)
def _feature_maps(
    mid: str, stage: str, digest: str, size: int, _loaded: LoadedModel, _image: Image.Image
) -> tuple[np.ndarray, np.ndarray]:
    x = image_tensor(_image, size)
    with MODEL_LOCK:
        acts, logits = activations.capture_stages(_loaded.model, x, [stage])
    return acts[stage][0].numpy(), logits.softmax(-1)[0].numpy()


@st.cache_data(max_entries=8, show_spinner=False)
def first_filters(mid: str, _loaded: LoadedModel) -> np.ndarray:
    """(C_out, k, k, 3) weights of the first conv."""
    return filters.conv_filters(_loaded.model, models.ARCHS[_loaded.arch].first_conv)


def gradcam_overlay(
    mid: str, stage: str, digest: str, size: int, class_idx: int | None, loaded: LoadedModel, image: Image.Image
) -> tuple[Image.Image, int]:
    """Grad-CAM at `stage` for class_idx (None: the top class) over the model's view of the image."""
    with st.spinner(_("Grad-CAM…")):
        return _gradcam_overlay(mid, stage, digest, size, class_idx, loaded, image)


@st.cache_data(max_entries=16, show_spinner=False)
def _gradcam_overlay(
    mid: str, stage: str, digest: str, size: int, class_idx: int | None, _loaded: LoadedModel, _image: Image.Image
) -> tuple[Image.Image, int]:
    x = image_tensor(_image, size)
    with MODEL_LOCK:
        heat, idx = grad_cam(_loaded.model, x, models.get_module(_loaded.model, stage), class_idx)
    return overlay(model_view(_image, size), heat), idx


def projections(
    mid: str, stage: str, digest: str, size: int, channel: int, loaded: LoadedModel, image: Image.Image
) -> tuple[Image.Image, Image.Image, tuple[int, int], float]:
    """Deconvnet and guided-backprop pictures of the channel's strongest unit, its position and value."""
    with st.spinner(_("Projecting back to pixels (deconvnet and guided backprop)…")):
        return _projections(mid, stage, digest, size, channel, loaded, image)


@st.cache_data(max_entries=16, show_spinner=False)
def _projections(
    mid: str, stage: str, digest: str, size: int, channel: int, _loaded: LoadedModel, _image: Image.Image
) -> tuple[Image.Image, Image.Image, tuple[int, int], float]:
    x = image_tensor(_image, size)
    with heavy_work_ui(_("Projecting back to pixels")):
        with MODEL_LOCK:  # deepcopy must not copy someone else's hooks
            net = projection.projectable_copy(_loaded.model, stage)
        pos, value = projection.strongest_unit(net, x, channel)
        deconv = projection.project(net, x, channel, "deconvnet", pos)
        guided = projection.project(net, x, channel, "guided", pos)
    return projection.signal_image(deconv), projection.signal_image(guided), pos, value


@st.cache_data(max_entries=8, show_spinner=False)
def occlusion_result(
    mid: str,
    digest: str,
    size: int,
    patch: int,
    stride: int,
    target: int | None,
    _loaded: LoadedModel,
    _image: Image.Image,
) -> occlusion.OcclusionResult:
    """Occlusion map on a private copy (batched forwards for seconds must not fire others' hooks), cached by the
    model's weights, the image and the settings; a progress bar while it is computed."""
    bar = st.progress(0.0, text=_("Occluding…"))  # made here, so a cached call replays it (and its end: gone)
    with heavy_work_ui(_("The occlusion map")):
        with MODEL_LOCK:
            model = activations.private_copy(_loaded.model)
        result = occlusion.occlusion_map(
            model,
            image_tensor(_image, size),
            target=target,
            patch=patch,
            stride=stride,
            progress=lambda done, total: bar.progress(
                done / total, text=_("Occluding… {done}/{total} positions").format(done=done, total=total)
            ),
        )
    bar.empty()
    return result


def patch_index_path(mid: str, fingerprint: str, stage: str, size: int) -> Path:
    return patches.index_path(patches.index_key(mid, fingerprint, stage, size, TOP_K))


@st.cache_data(max_entries=16, show_spinner=False)
def load_patch_index(path: str, mtime: float) -> patches.PatchIndex:
    """The saved index (re-read when the file changes)."""
    return patches.load_index(Path(path))


def patch_index_request(
    loaded: LoadedModel, mid: str, fingerprint: str, stage: str, size: int, paths: list[str]
) -> patches.PatchIndexRequest:
    """What the worker needs to build the same index as build_patch_index: the model by how to load it."""
    return patches.PatchIndexRequest(
        model_kind=loaded.kind, arch=loaded.arch, model_id=mid, fingerprint=fingerprint, stage=stage,
        size=int(size), paths=tuple(paths), run_id=loaded.run_id if loaded.kind == "run" else None, k=TOP_K,
    )  # fmt: skip


def patch_index_job_ui(request: patches.PatchIndexRequest, spec: DatasetSpec) -> None:
    """The Build button: the index as a job (ui.executor: a laptop builds it here with a progress bar, class mode
    queues it for the worker, once per index, anyone may ask; core.teach.jobs checks a student's size), then its
    progress; the page reruns when the index is on disk."""
    n = len(request.paths)
    label = n_("Build the index (one pass over {n} image)", "Build the index (one pass over {n} images)", n)
    if st.button(label.format(n=n), key="viz_patch_build"):
        live = LiveBar(_("Indexing…"), (EventKind.INDEX,))
        record = run_job_ui(
            lambda work: submit_shared_ui(
                lambda queue: jobs.submit_patch_index(data_dir(), identity(), request, spec, queue=queue), work
            ),
            live=live,
        )
        live.clear()
        if record is not None and record.status == job_records.JobStatus.DONE:
            st.rerun()  # show the index from disk
    found = jobs_for(job_records.JobKind.PATCH_INDEX, request.key)
    if (active := job_records.find_job(found, job_records.JobKind.PATCH_INDEX, request.key)) is not None:
        job_progress_ui(active.job_id)
    elif (failed := last_failure(found, job_records.JobKind.PATCH_INDEX, request.key)) is not None:
        st.warning(_("The last build of this index did not finish: {why}").format(why=failed.shown_error()))


@st.cache_data(max_entries=64, show_spinner=False)
def patch_crops(
    path: str, mtime: float, channel: int, rf: receptive_field.ReceptiveField
) -> list[tuple[Image.Image, str, float]]:
    """The channel's top patches cropped to the receptive field."""
    return patches.top_patches(load_patch_index(path, mtime), channel, rf)


UNCHANGED = 1e-6  # relative change below this: the filter is bit-for-bit ImageNet's (float noise aside)


def filter_change_note(change: np.ndarray) -> tuple[str, str]:
    """The metric value and caption for how far fine-tuning moved the first-layer filters.

    A frozen-only run never trains the body, so its filters are exactly ImageNet's: say that,
    rather than "0.00 %" next to prose about fine-tuning.
    """
    change = np.asarray(change, dtype=np.float64)
    if change.size == 0 or float(np.max(change)) < UNCHANGED:
        return _("0 (unchanged)"), _(
            "The body's filters did not change: a frozen-only run trains the head (and, in fastai's frozen "
            "training, BatchNorm) but never these convolutions, so they are ImageNet's exactly. Unfreeze and "
            "train stage 2 to see fine-tuning move them (a little)."
        )
    return pct(float(np.median(change)), 2), _(
        "Fine-tuning barely moves these filters: edges are edges, for pets as for everything else."
    )
