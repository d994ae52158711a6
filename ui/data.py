"""Cached wrappers and widget helpers for the Data page: labelling and exploring (the sources are in ui/sources.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st
from PIL import Image

from core.data import exploration, labels
from core.data.datasets import DatasetError, DatasetScan, DatasetSpec, check_dataset, list_image_files, split_counts
from core.data.images import IMAGE_SUFFIXES, ImageError, public_reason, square_thumbnail
from core.data.labels import COURSE_V3_PATTERN, PATTERN_NOTE, PETS_PATTERN, LabelError, LabelResult
from core.i18n import _, listed, n_, num, pct, translated_columns
from core.storage import stable_hash
from core.store.signatures import dataset_signature
from ui.state import active_dataset, set_active_dataset, shown_name
from ui.tab_store import keep, relabelled, remember


@st.cache_data(max_entries=2000, show_spinner=False)
def _thumbnail(path: str, side: int, mtime: float) -> Image.Image:
    return square_thumbnail(Path(path), side)


def thumbnail(path: str, side: int = 160) -> Image.Image:
    """The one thumbnail of the app's photo grids: side×side, centre-cropped (core.data.images.square_thumbnail),
    cached until the file changes; ImageError (meant for the page) when it is gone or unreadable."""
    try:
        mtime = os.stat(path).st_mtime  # (os.stat: "" is no file; Path("") would be the current folder)
    except OSError as err:
        raise ImageError(
            _("cannot read {name}: {reason}").format(name=Path(path).name, reason=public_reason(err, path))
        ) from err
    return _thumbnail(str(path), side, mtime)


@st.cache_data(max_entries=32, show_spinner=False)
def file_list(root: str, signature: str) -> list[str]:
    """Cached list of image files (relative paths) under root."""
    return list_image_files(root)


@st.cache_data(max_entries=64, show_spinner=False)
def try_labels(rel_paths: tuple[str, ...], pattern: str, match_on: str) -> LabelResult:
    """Cached labelling; raises LabelError for a pattern that cannot be used."""
    return labels.label_files(list(rel_paths), pattern, match_on)


# ---- 2. label ------------------------------------------------------------------------------------


def dataset_files_ui(spec: DatasetSpec) -> tuple[str, ...] | None:
    """The dataset's image files (relative paths), or None after saying why there are none to label."""
    root = Path(spec.root)
    if not root.is_dir():
        st.error(
            _("The dataset folder of {name} no longer exists. Choose another dataset above.").format(
                name=shown_name(spec)
            )
        )
        return None
    try:
        rel_paths = tuple(file_list(str(root), dataset_signature(root)))
    except DatasetError as err:
        st.error(str(err))
        return None
    if not rel_paths:
        st.warning(
            _("No images found in {name} (looked for {suffixes}). Choose another dataset above.").format(
                name=shown_name(spec), suffixes=listed(sorted(IMAGE_SUFFIXES))
            )
        )
        return None
    return rel_paths


def labelling_ui(spec: DatasetSpec, rel_paths: tuple[str, ...]) -> tuple[str, str, str, LabelResult | None]:
    """Where the labels come from (regex on name/path, or parent folder) and what that labelling gives.

    Returns (label_from, pattern, match_on, result); result is None while the pattern cannot be used.
    """
    ds_key = stable_hash(spec.root, 8)  # labelling widgets are per dataset: switching datasets resets them
    ways = {"regex": _("a regular expression on the file name/path"), "parent": _("the parent folder")}
    label_from = st.radio(
        _("Labels come from"),
        list(ways),
        index=0 if spec.label_from == "regex" else 1,
        format_func=ways.get,
        horizontal=True,
        key=relabelled(f"data_label_from_{ds_key}", ways, ways.get),
    )
    pattern, match_on = spec.pattern, spec.match_on
    if label_from != "regex":
        return label_from, pattern, match_on, labels.label_by_parent(list(rel_paths))
    c1, c2 = st.columns([3, 2])
    pattern = c1.text_input(_("Pattern (the ( ) group is the label)"), value=spec.pattern, key=f"data_pattern_{ds_key}")
    targets = {"name": _("file name (from_name_re)"), "path": _("whole path (from_path_re)")}
    match_on = c2.radio(
        _("Match against"),
        list(targets),
        index=0 if spec.match_on == "name" else 1,
        format_func=targets.get,
        key=relabelled(f"data_match_on_{ds_key}", targets, targets.get),
    )
    st.caption(
        _("Lesson default: `{pets}` · course-v3: `{v3}`. {note}").format(
            pets=PETS_PATTERN, v3=COURSE_V3_PATTERN, note=_(PATTERN_NOTE)
        )
    )
    st.code(
        f"dls = ImageDataLoaders.{'from_name_re' if match_on == 'name' else 'from_path_re'}(\n"
        f"    path, fnames, pat=r'{pattern}', valid_pct=0.2, seed=42, item_tfms=Resize(224))",
        language="python",
    )
    try:
        result = try_labels(rel_paths, pattern, match_on)
    except LabelError as err:
        st.error(_("{error} Labels are unchanged until the pattern works.").format(error=err))
        result = None
    return label_from, pattern, match_on, result


def label_result_ui(result: LabelResult) -> None:
    """Counts, examples of each class and the files the labelling leaves out."""
    m1, m2, m3 = st.columns(3)
    m1.metric(_("files matched"), num(len(result.labels)))
    m2.metric(_("unmatched"), num(len(result.unmatched)))
    m3.metric(n_("class found", "classes found", len(result.classes)), len(result.classes))
    c1, c2 = st.columns(2)
    with c1:
        st.markdown(_("**Examples of each class**"))
        st.dataframe(translated_columns(exploration.label_examples(result)), hide_index=True, height=220)
    with c2:
        st.markdown(_("**Unmatched files** (left out of the dataset)"))
        if result.unmatched:
            st.dataframe({_("file"): result.unmatched[:500]}, hide_index=True, height=220)
        else:
            st.caption(_("None: every image got a label."))


def apply_labelling(
    spec: DatasetSpec, label_from: str, pattern: str, match_on: str, result: LabelResult
) -> DatasetSpec:
    """Make a changed labelling the active dataset's when it finds two classes or more; the spec now active."""
    changed = (label_from, pattern, match_on) != (spec.label_from, spec.pattern, spec.match_on)
    if changed and result.labels:
        if len(result.classes) < 2:
            st.warning(_("This labelling finds fewer than two classes; keep the previous one."))
        else:
            set_active_dataset(spec.with_labelling(label_from, pattern, match_on))
            return active_dataset()
    elif changed:
        st.warning(_("The pattern matches no file; the previous labelling is kept."))
    return spec


# ---- 3. explore ----------------------------------------------------------------------------------


def checks_ui(scan: DatasetScan) -> None:
    """What keeps this dataset from teaching anything (core.data.datasets.check_dataset: blocking ones as errors), and
    how many files are left out."""
    for check in check_dataset(scan):  # datasets that cannot teach anything are named before training
        (st.error if check.blocking else st.warning)(check.message, icon="⛔" if check.blocking else "⚠️")
    left_out_warning_ui(scan)


def class_balance_ui(items: pd.DataFrame) -> None:
    st.caption(
        _(
            "Roughly equal counts per class mean plain accuracy is a fair metric. In Pets the cat breeds are the "
            "capitalised names."
        )
    )
    st.plotly_chart(exploration.class_balance_figure(items), key="data_balance")


def image_sizes_ui(items: pd.DataFrame) -> None:
    st.caption(
        _("Photos come in every size, read here from the file headers only. The model needs one size: Resize(224).")
    )
    c1, c2 = st.columns([3, 1])
    c1.plotly_chart(exploration.size_figure(items), key="data_sizes")
    for name, value in exploration.size_summary(items).items():
        c2.metric(_(name), f"{num(value, 0)} px")


def split_ui(spec: DatasetSpec, items: pd.DataFrame) -> None:
    """valid_pct and seed, and how many images of each class went to training and validation."""
    st.caption(
        _(
            "`valid_pct={valid_pct}`, `seed={seed}`: a random {share} of the images is held out to measure error "
            "on photos the model never trained on. The seed makes it the same split every time."
        ).format(valid_pct=spec.valid_pct, seed=spec.seed, share=pct(spec.valid_pct))
    )
    c1, c2 = st.columns([1, 2])
    c1.metric(_("train"), num(int((~items["is_valid"]).sum())))
    c1.metric(_("valid"), num(int(items["is_valid"].sum())))
    c2.dataframe(translated_columns(split_counts(items)), hide_index=True, height=260)


def left_out_warning_ui(scan: DatasetScan) -> None:
    """One line when some files could not be read or used (they are listed at the bottom)."""
    if scan.corrupt or scan.skipped:
        n_bad = len(scan.corrupt) + len(scan.skipped)
        st.warning(
            n_(
                "{n} file could not be read or used and is left out (listed at the bottom).",
                "{n} files could not be read or used and are left out (listed at the bottom).",
                n_bad,
            ).format(n=num(n_bad))
        )


def sample_batch_ui(scan: DatasetScan) -> pd.DataFrame:
    """Class filter, how many, Shuffle, and the grid of sample images; returns the rows shown."""
    f1, f2, f3 = st.columns([3, 1, 1])
    # one filter per dataset and labelling: a class chip of another dataset never carries over
    labelling = stable_hash([scan.spec.root, scan.spec.label_from, scan.spec.pattern, scan.spec.match_on], 10)
    filter_key = keep(f"data_filter_{labelling}", options=scan.classes)
    chosen = f1.multiselect(
        _("Show only these classes"), scan.classes, key=filter_key, placeholder=_("All classes: pick some to filter")
    )
    n_show = f2.select_slider(
        _("Images"), [6, 9, 12, 18, 24], value=12, key=keep("data_n_show", options=[6, 9, 12, 18, 24])
    )
    keep("data_seed")
    if f3.button(_("🔀 Shuffle"), key="data_shuffle"):
        st.session_state["data_seed"] = st.session_state.get("data_seed", 0) + 1
        remember("data_seed", st.session_state["data_seed"])
    rows = exploration.sample_rows(scan.items, chosen, n_show, st.session_state.get("data_seed", 0))
    cols = st.columns(6)
    for i, row in enumerate(rows.itertuples()):
        with cols[i % 6]:
            try:
                st.image(thumbnail(row.path, 160), caption=row.label, width="stretch")
            except ImageError as err:
                st.caption(f"⚠️ {err}")
    return rows


def normalisation_ui(sample_path: str) -> None:
    """One photo, its per-channel statistics before and after ImageNet normalisation, and their histograms."""
    try:
        sample = thumbnail(sample_path, 224)
    except ImageError as err:
        st.warning(str(err))
        return
    c1, c2 = st.columns([1, 3])
    c1.image(sample, caption=Path(sample_path).name, width="stretch")
    c2.dataframe(exploration.normalisation_table(sample), hide_index=True)
    st.plotly_chart(exploration.channel_histogram_figure(sample), key="data_hist")


def unreadable_files_ui(scan: DatasetScan) -> None:
    """The files left out: damaged images, dangling or escaping links, sockets, unreadable folders."""
    if not (scan.corrupt or scan.skipped):
        return
    st.subheader(_("Unreadable files"))
    st.caption(
        _("Left out: damaged images, links whose target is gone or outside the folder, sockets, unreadable folders.")
    )
    st.dataframe([{_("file"): rel, _("problem"): why} for rel, why in [*scan.corrupt, *scan.skipped]], hide_index=True)
