"""Cached wrappers and widgets for the Prediction page: one forward per photo (top-5 and Grad-CAM), the kNN reference."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import NamedTuple

import streamlit as st
from PIL import Image
from streamlit.delta_generator import DeltaGenerator

from core.data.datasets import DatasetError, DatasetScan
from core.data.images import ImageError, LoadedImage, load_image_bytes, load_image_file
from core.i18n import N_, _, n_, num, pct
from core.nets.models import WEIGHTS_FILE, LoadedModel
from core.predict import novelty, prediction
from core.predict.novelty import NoveltySpec, Reference
from core.settings import NOVELTY_DIR, sub_dir
from core.store import records
from core.store.session_store import StoreError
from ui.pickers import image_picker_ui
from ui.runs import features_dir
from ui.state import active_dataset, class_dataset, runs_dir, scan_of
from ui.tab_store import keep, relabelled, tab_store

SPEC = NoveltySpec()  # k = 5 neighbours, line at 95 % of validation images, ≤ 600 + 300 images


def model_key(loaded: LoadedModel) -> str:
    """A cache key naming this exact loaded model (a reloaded run gets a new key)."""
    return f"{loaded.kind}:{loaded.run_id or loaded.arch}:{id(loaded.model)}"


@st.cache_data(max_entries=128, show_spinner=False)
def predicted(
    key: str,
    digest: str,
    reference_key: str,
    _loaded: LoadedModel,
    _image: Image.Image,
    _reference: Reference | None,
) -> prediction.Prediction:
    """The photo's top-5 and Grad-CAM overlay (one forward), once per (model, photo, reference).

    The not-sure rule is applied afterwards (prediction.rejudge) and the Grad-CAM toggle only hides
    the overlay: a rerun of the page (another photo added, a slider, the toggle) runs no forward
    for photos already shown. No lock: the shared model is only read, with no hooks.
    """
    return prediction.predict(_loaded, _image, k=5, reference=_reference, cam=True)


def reference_key(reference: Reference | None) -> str:
    """Names the reference a prediction used by its content (st.cache_data hands out copies, so not by id)."""
    if reference is None:
        return "none"
    digest = hashlib.blake2b(reference.features.tobytes(), digest_size=8).hexdigest()
    return f"{digest}:{reference.threshold!r}:{reference.k}:{reference.in_rate!r}:{reference.held_out}"


class ImagesMissing(ValueError):
    """The run's training images cannot be found or read on this server."""


@st.cache_data(max_entries=8, show_spinner=False)
def _reference(path: str, run_id: str, _loaded: LoadedModel) -> Reference:
    """The run's reference from its disk cache, else built once (from a fast run's cached features, else from
    the run's own training images) and cached. Raises ValueError when it cannot be built (not cached: a
    later visit tries again)."""

    def open_image(p: str) -> Image.Image | None:
        try:
            return load_image_file(Path(p)).image
        except ImageError:
            return None

    def build() -> Reference:
        try:  # a fast run's training already computed these features: read them instead
            record = records.read_record(runs_dir() / run_id)
            cached = novelty.reference_from_run(features_dir(), record, _loaded.model, SPEC)
        except (OSError, ValueError):
            cached = None
        if cached is not None:
            return cached
        found = run_images(run_id)
        if found is None:
            raise ImagesMissing(run_id)
        train, valid = novelty.reference_pairs(found)
        n = min(len(train), SPEC.max_reference) + min(len(valid), SPEC.max_calibration)
        with st.spinner(_("Computing the run's reference features once ({n} images; cached on disk)…").format(n=n)):
            feature_fn = novelty.body_features(_loaded.model)
            return novelty.build_reference(feature_fn, _loaded.img_size, train, valid, SPEC, open_image)

    return novelty.cached_reference(Path(path), build)[0]


def run_images(run_id: str) -> DatasetScan | None:
    """A scan of the run's own training images (its recorded dataset, or one that matches it), or None.

    Whatever dataset the tab has open: the reference belongs to the run. A scan that matches the run's files
    and split exactly wins; else one with the run's classes (the same photos moved, or labelled anew).
    """
    try:
        record = records.read_record(runs_dir() / run_id)
    except (OSError, ValueError):
        return None
    fallback = None
    for spec in novelty.candidate_specs(record, (active_dataset(), class_dataset())):
        try:
            found = scan_of(spec)
        except (DatasetError, ValueError, OSError):
            continue
        if found.fingerprint == (record.dataset.fingerprint or record.config.dataset):
            return found
        if fallback is None and novelty.matches_run(found, record):
            fallback = found
    return fallback


def novelty_reference(loaded: LoadedModel) -> tuple[Reference | None, str]:
    """A run's kNN reference (training features + calibrated line), and what it is or why there is none.

    Cached on disk per run; built once from the run's own training images (run_images), not the tab's dataset.
    """
    if loaded.kind != "run" or not loaded.run_id:
        return None, _("only for a fine-tuned run: the ImageNet model's training images (ImageNet) are not here")
    path = novelty.cache_path(sub_dir(NOVELTY_DIR), loaded.run_id, runs_dir() / loaded.run_id / WEIGHTS_FILE, SPEC)
    try:
        reference = _reference(str(path), loaded.run_id, loaded)
    except ImagesMissing:
        return None, _("the run's training images cannot be read on this server (moved or deleted)")
    except ValueError:
        return None, _("no readable training image to compare photos with")
    return reference, reference.describe()


# ---- widgets ---------------------------------------------------------------------------------------

UPLOAD, PICK = N_("Upload (one or more)"), N_("Dataset or camera")  # kept in the tab's store; shown translated


def model_banner_ui(loaded: LoadedModel, student: bool = False) -> None:
    """Which model predicts, and what it can name (a run: the dataset's classes; else 1000 ImageNet labels).

    student: class mode's students cannot train, so they are pointed at the runs there are and at asking.
    """
    if loaded.kind == "run":
        n = len(loaded.classes)
        st.success(
            n_("Model: **{label}** ({arch}, {n} class).", "Model: **{label}** ({arch}, {n} classes).", n).format(
                label=loaded.shown_label(), arch=loaded.arch, n=num(n)
            )
        )
        return
    if student:
        text = _(
            "Model: **{label}**. No fine-tuned run is chosen, so this model predicts the **1000 ImageNet labels** "
            "(e.g. *tabby*, *pug*, *golden retriever*), not your dataset's classes. Choose a trained run with "
            "*Switch model* in the sidebar; the Training page's Train button asks the teacher for a new one."
        )
    else:
        text = _(
            "Model: **{label}**. No fine-tuned run is chosen, so this model predicts the **1000 ImageNet labels** "
            "(e.g. *tabby*, *pug*, *golden retriever*), not your dataset's classes. Train a run on the Training "
            "page and choose it to predict your own breeds."
        )
    st.info(text.format(label=loaded.shown_label()))


def rule_ui() -> tuple[DeltaGenerator, float, float]:
    """The "not sure" explainer with its two thresholds; returns its box (for the distance caption) and them."""
    box = st.expander(_("⚖️ When does the page say “not sure”?"))
    with box:
        st.markdown(
            _(
                "Softmax always sums to {all}, so a model *must* pick some class even for a photo of a pumpkin "
                "(“{sure} capybara”). The page says **not sure** when no class clearly wins (top probability below "
                "the threshold), when the probabilities are spread out (entropy, 0 = all on one class, 1 = even, "
                "above the threshold), or, for a run, when the photo is **unlike every training image**: the "
                "body's pooled features of the photo, scaled to length 1, are farther from their 5th nearest "
                "training image than for {share} of the validation images (k-nearest neighbours, Sun et al. 2022). "
                "That last check looks at what the network *sees*, not at its answer, so a Fashion-MNIST run's "
                "confident “{all} Bag” for a photo of a cat is caught too."
            ).format(all=pct(1.0), sure=pct(0.99), share=pct(SPEC.in_rate))
        )
        c1, c2 = st.columns(2)
        min_top_prob = c1.slider(
            _("Minimum top probability"), 0.0, 1.0, 0.5, 0.05, key=keep("pred_min_prob", default=0.5)
        )
        max_entropy = c2.slider(_("Maximum entropy"), 0.0, 1.0, 0.6, 0.05, key=keep("pred_max_entropy", default=0.6))
    return box, min_top_prob, max_entropy


class Photo(NamedTuple):
    """One photo to predict: its name, the decoded image, and what st.image shows."""

    name: str
    item: LoadedImage
    shown: bytes | Image.Image  # the uploaded JPEG itself when decoding changed nothing, else the decoded image


def shown_image(data: bytes, item: LoadedImage) -> bytes | Image.Image:
    """The uploaded bytes when they are a JPEG the decoder kept as it is (no notes: not shrunk, rotated or
    converted), else the decoded image. Streamlit sends JPEG bytes as they are; a PIL image it re-encodes at
    quality 100 on every rerun (~10 ms and ~0.5 MB for a 1024×768 photo)."""
    return data if data[:3] == b"\xff\xd8\xff" and not item.notes else item.image


def photos_ui() -> list[Photo]:
    """The photos to predict: uploads (several at once), or one from the dataset or the camera.

    A file that is not a readable image is named in an error and left out; the others go on.
    """
    source = st.segmented_control(
        _("Images from"),
        [UPLOAD, PICK],
        default=UPLOAD,
        format_func=_,
        key=relabelled(keep("pred_input", options=[UPLOAD, PICK, None], default=UPLOAD), [UPLOAD, PICK], _),
    )
    photos: list[Photo] = []
    if source == PICK:
        picked = image_picker_ui("pred", sources=("Dataset", "Camera"))
        if picked is not None:
            photos.append(Photo(_("picked image"), picked, picked.image))
        return photos
    fresh = UPLOADS_KEY not in st.session_state  # the uploader is new: the page was just opened or reloaded
    uploads = st.file_uploader(
        _("Upload photos (JPEG, PNG, GIF, WebP, BMP, TIFF)"), accept_multiple_files=True, key=UPLOADS_KEY
    )
    if not uploads:
        if not fresh and st.session_state.pop(KEPT_MARK, None):  # the student emptied the uploader: forget them
            forget_photos()
            return photos
        return kept_photos_ui()
    uploaded: list[bytes] = []
    for upload in uploads:
        data = upload.getvalue()
        try:
            item = load_image_bytes(data, upload.name)
        except ImageError as err:
            st.error(f"❌ {err}")
            continue
        photos.append(Photo(upload.name, item, shown_image(data, item)))
        uploaded.append(data)
    keep_photos(photos, uploaded)
    return photos


UPLOADS_KEY = "pred_uploads"
KEPT_MARK = "_pred_kept"  # digests of the uploads this session kept in the tab's store (written once per change)
KEPT_PREFIX = "pred_photo_"  # blob names in the tab's store: pred_photo_0 … pred_photo_{MAX_KEPT - 1}
MAX_KEPT = 8  # uploads kept across a page change or a reload (each ≤ 10 MB; the store caps a tab's total)


def keep_photos(photos: list[Photo], uploaded: list[bytes]) -> None:
    """Keep the readable uploads (the first MAX_KEPT) in the tab's store, once per new set of photos."""
    digests = [p.item.digest for p in photos[:MAX_KEPT]]
    if st.session_state.get(KEPT_MARK) == digests:
        return
    store = tab_store()
    kept = 0
    for photo, data in list(zip(photos, uploaded, strict=True))[:MAX_KEPT]:
        with contextlib.suppress(StoreError, OSError):
            kept += store.put_blob(f"{KEPT_PREFIX}{kept}", data, photo.name)
    for i in range(kept, MAX_KEPT):
        store.drop_blob(f"{KEPT_PREFIX}{i}")
    st.session_state[KEPT_MARK] = digests
    if len(photos) > kept:
        st.caption(
            _(
                "ℹ️ The first {n} photos are kept when you leave the page or reload; upload the others again then."
            ).format(n=num(kept))
        )


def forget_photos() -> None:
    """Drop the kept uploads (the Forget button, or an emptied uploader)."""
    store = tab_store()
    for i in range(MAX_KEPT):
        store.drop_blob(f"{KEPT_PREFIX}{i}")
    st.session_state.pop(KEPT_MARK, None)


def kept_photos_ui() -> list[Photo]:
    """The uploads kept earlier in this tab (after a page change or a reload), with a Forget button."""
    store = tab_store()
    photos = []
    for i in range(MAX_KEPT):
        blob = store.get_blob(f"{KEPT_PREFIX}{i}")
        if blob is None:
            continue
        try:
            item = load_image_bytes(blob.data, blob.filename)
        except ImageError:
            store.drop_blob(f"{KEPT_PREFIX}{i}")
            continue
        photos.append(Photo(blob.filename, item, shown_image(blob.data, item)))
    if photos:
        c1, c2 = st.columns([4, 1], vertical_alignment="center")
        c1.caption(
            n_(
                "Showing {n} photo uploaded earlier in this tab. Upload others to replace it.",
                "Showing {n} photos uploaded earlier in this tab. Upload others to replace them.",
                len(photos),
            ).format(n=num(len(photos)))
        )
        c2.button(_("Forget them"), key="pred_forget", on_click=forget_photos)
    return photos


def result_ui(
    n: int, photo: Photo, result: prediction.Prediction, show_cam: bool, label: str, check_off: str | None = None
) -> None:
    """One photo's card: the photo, the verdict with its top-5 chart and numbers, and Grad-CAM's overlay.

    check_off: why a run's "unlike the training images" check could not run; said under the verdict itself.
    """
    with st.container(border=True):
        left, middle, right = st.columns([1, 1.6, 1])
        left.image(photo.shown, caption=photo.name, width="stretch")
        for note in photo.item.notes:
            left.caption(f"ℹ️ {note}")
        with middle:
            if result.not_sure:
                st.warning(
                    _("🤔 **Not sure.** Best guess *{label}* ({prob}), but {reasons}.").format(
                        label=result.top, prob=pct(result.top_prob), reasons=_("; ").join(result.reasons)
                    )
                )
            else:
                st.markdown(f"### {result.top} — {pct(result.top_prob)}")
            if check_off:
                st.warning(
                    _("Distance check off: {note}. Only the probability rules judged this photo.").format(
                        note=check_off
                    ),
                    icon="⚠️",
                )
            st.plotly_chart(prediction.top_k_chart(result), key=f"pred_chart_{n}")
            c1, c2, c3 = st.columns(3)
            c1.metric(_("inference time"), _("{ms} ms").format(ms=num(result.seconds * 1000, 0)))
            c2.metric(_("entropy"), num(result.entropy, 2))
            if result.distance is None:
                c3.metric(_("energy"), num(result.energy, 2))
            else:
                c3.metric(_("distance to training"), num(result.distance, 3))
            st.caption(_("Model: {label}").format(label=label))
        if show_cam and result.cam is not None:
            right.image(
                result.cam,
                caption=_("Grad-CAM for “{label}”: where the evidence was").format(label=result.top),
                width="stretch",
            )
