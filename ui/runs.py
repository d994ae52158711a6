"""Runs in the UI: the runs list and pickers, the active run, cached run records and predictions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.data import datasets
from core.i18n import _, num, pct
from core.nets import inference, models
from core.settings import data_dir, sub_dir
from core.store import records, runs
from core.teach import classroom
from core.teach.roster import markdown_safe
from core.train import curves
from ui.auth import identity
from ui.state import ACTIVE_RUN, active_dataset, runs_dir, scan_of
from ui.tab_store import keep, relabelled


def features_dir() -> Path:
    return sub_dir("features")


def list_runs_ui(show_warnings: bool = True) -> list[runs.RunInfo]:
    """All complete runs (newest first); a broken run folder becomes a warning, never a crash."""
    found, warnings = runs.list_runs(runs_dir())
    who = identity()
    found = [r for r in found if classroom.run_visible(r.record.dataset.root, who, data_dir())]  # others' private
    if show_warnings:
        for warning in warnings:
            st.warning(warning)
    return found


def run_dataset_name(run: runs.RunInfo) -> str:
    """The name of the dataset a run was trained on ('?' for records that do not say)."""
    return run.record.dataset.name or "?"


def run_dataset_fingerprint(run: runs.RunInfo) -> str | None:
    """The fingerprint of the dataset a run was trained on (files, labels, split)."""
    return run.record.config.dataset or None


def run_label(run: runs.RunInfo) -> str:
    """One line per run for pickers: id, dataset, title, error rate."""
    err = run.error_rate
    text = f"{run.run_id[:8]} · {run_dataset_name(run)} · {run.title}"
    return text + (" · " + _("error {rate}").format(rate=pct(err, 1)) if err is not None else "")


def runs_table(found: list[runs.RunInfo], active: str | None) -> pd.DataFrame:
    """The Training page's runs table: one row per run, every cell text in the current language.

    st.table renders Markdown in its cells: a dataset's name and a run's title are escaped.
    """
    rows = [
        {
            _("run"): r.run_id,
            _("dataset"): markdown_safe(run_dataset_name(r)),
            _("title"): markdown_safe(r.title),
            _("error rate"): pct(r.error_rate, 1) if r.error_rate is not None else "",
            _("epochs"): num(len(r.record.epochs)),
            _("train time (s)"): num(sum(r.record.timings.values()), 1),
            _("active"): "✓" if active == r.run_id else "",
        }
        for r in found
    ]
    return pd.DataFrame(rows)


def runs_of_dataset(found: list[runs.RunInfo], fingerprint: str | None, keep: str | None = None) -> list[runs.RunInfo]:
    """The runs trained on this dataset, those whose record does not say, and `keep` (e.g. the active run)."""
    return [r for r in found if run_dataset_fingerprint(r) in (fingerprint, None) or r.run_id == keep]


def active_fingerprint() -> str | None:
    """The active dataset's fingerprint, or None when there is none (or it cannot be read)."""
    spec = active_dataset()
    if spec is None:
        return None
    try:  # quietly: the sidebar and the pages already say when the dataset cannot be read
        return scan_of(spec).fingerprint
    except (datasets.DatasetError, ValueError, OSError):
        return None


NO_RUN = "imagenet"  # the pickers' "no run" option: a None value would show as "Choose an option"


def _picker_ui(label: str, key: str, show_all: bool = False) -> str | None:
    """A selectbox over the active dataset's runs (all runs with show_all) that follows and sets the active run.

    Its state is synced from the active run before drawing and written back only by its on_change
    callback (which runs before the script), so the picker, the sidebar's "Model:" line and every
    page agree on the active run in the same run of the script.
    """
    found = list_runs_ui(show_warnings=False)
    current = _drop_unusable_active_run(found)
    if not found:
        return None
    shown = found if show_all else runs_of_dataset(found, active_fingerprint(), keep=current)
    labels = {r.run_id: run_label(r) for r in shown}
    st.session_state[key] = current if current in labels else NO_RUN

    def changed() -> None:
        chosen = st.session_state[key]
        st.session_state[ACTIVE_RUN] = None if chosen == NO_RUN else chosen

    st.selectbox(
        label,
        [NO_RUN, *labels],
        format_func=lambda rid: _("ImageNet-pretrained (no run)") if rid == NO_RUN else labels[rid],
        key=key,
        on_change=changed,
    )
    return current if current in labels else None


def _drop_unusable_active_run(found: list[runs.RunInfo]) -> str | None:
    """The active run, cleared when it is no longer a usable run here (deleted, broken, or private to another)."""
    current = st.session_state.get(ACTIVE_RUN)
    if current is not None and current not in {r.run_id for r in found}:
        st.session_state[ACTIVE_RUN] = current = None
    return current


def run_picker_ui(key: str, label: str | None = None) -> str | None:
    """Selectbox over stored runs that sets the session's active run; returns its id (or None)."""
    if not list_runs_ui(show_warnings=False):
        _drop_unusable_active_run([])
        st.caption(_("No trained runs yet: train one on the **Training** page."))
        return None
    return _picker_ui(label or _("Active run"), key)


@st.cache_data(max_entries=32, show_spinner=False)
def run_predictions(run_dir: str, stamp: float, n_classes: int | None = None) -> runs.Preds | None:
    """The run's checked validation predictions (probs, targets); `stamp` (mtime) invalidates it.

    Raises records.RecordError (a ValueError) when preds.npz is damaged or does not fit the run.
    """
    return runs.load_preds(Path(run_dir), n_classes)


def run_record(run_id: str) -> runs.RunInfo | None:
    """A stored run by id, or None (with the reason shown) when it is missing or broken."""
    path = runs_dir() / run_id
    try:
        return runs.RunInfo(run_id, path, records.check_run(path))
    except (ValueError, OSError) as err:
        st.warning(_("Run {run} cannot be read: {error}").format(run=run_id, error=err))
        return None


TRAIN_LAST = "train_last_run"  # the run whose chart and table the Training page shows
TRAIN_OVERLAY = "train_overlay"  # the runs whose curves the Training page overlays


def activate_run(run_id: str) -> None:
    """Make a run the active model and the one the Training page shows (an on_click callback)."""
    st.session_state[ACTIVE_RUN] = run_id
    st.session_state[TRAIN_LAST] = run_id


def shown_run_ui() -> None:
    """The Training page's run (the one just trained or opened): its loss curves, epochs, precision, and a warning
    when an older Pet Lab stored two different numbers for it."""
    shown = st.session_state.get(TRAIN_LAST)
    if not shown or not (runs_dir() / shown).is_dir():
        return
    shown_run = run_record(shown) if (runs_dir() / shown / models.WEIGHTS_FILE).is_file() else None
    record = shown_run.record if shown_run else None  # a broken run.json is a warning (run_record), not a crash
    if not record:
        return
    st.subheader(_("Run {run}: {title}").format(run=shown, title=shown_run.title))
    st.plotly_chart(curves.loss_figure(record.epochs), key="train_run_chart")
    st.dataframe(curves.epochs_table(record.epochs), hide_index=True)
    st.caption(inference.precision_note(record))
    if (differ := runs.stored_error_differs(shown_run)) is not None:
        st.warning(
            _(
                "This run was trained by an older Pet Lab that validated in {precision}: its last epoch says "
                "{shown} error, its stored predictions (Interpretation) {stored}. Retrain it to get one number."
            ).format(precision=record.precision, shown=pct(differ[0], 1), stored=pct(differ[1], 1))
        )


def runs_overview_ui(fingerprint: str) -> None:
    """The Training page's runs: the table (this dataset's, or every dataset's), Make active, the overlaid curves."""
    every = st.toggle(_("Runs of every dataset"), value=False, key=keep("train_all_runs"),
                      help=_("Off: only the runs trained on the active dataset (and the active run)."))  # fmt: skip
    found = list_runs_ui()
    if not every:
        found = runs_of_dataset(found, fingerprint, keep=st.session_state.get(ACTIVE_RUN))
    if not found:
        st.caption(_("No runs on this dataset yet.") if not every else _("No runs yet."))
        return
    # st.table: a long (translated) title wraps in its cell, the last column is never pushed out of view
    st.table(runs_table(found, st.session_state.get(ACTIVE_RUN)), hide_index=True)
    labels = {r.run_id: run_label(r) for r in found}
    pick = st.selectbox(_("Make active"), list(labels), format_func=labels.get,
                        key=relabelled("train_pick", labels, labels.get))  # fmt: skip
    st.button(_("Use as the active model"), key="train_activate", on_click=lambda: activate_run(pick))
    if TRAIN_OVERLAY in st.session_state:  # runs of another dataset (or deleted) leave the selection
        st.session_state[TRAIN_OVERLAY] = [i for i in st.session_state[TRAIN_OVERLAY] if i in labels]
    overlay = st.multiselect(_("Overlay runs"), [r.run_id for r in found], default=[r.run_id for r in found[:3]],
                             format_func=labels.get, key=relabelled(TRAIN_OVERLAY, labels, labels.get))  # fmt: skip
    metric = st.radio(_("Metric"), ["valid_loss", "error_rate", "train_loss"], horizontal=True,
                      key=keep("train_metric"))  # fmt: skip
    by_id = {r.run_id: r for r in found}
    st.plotly_chart(
        curves.runs_figure([(labels[i], by_id[i].record.epochs) for i in overlay], metric),
        key="train_overlay_chart",
    )


SIDEBAR_RUN_KEY = "sidebar_run"


def sidebar_run_picker_ui() -> None:
    """The sidebar's model switcher: the active run, or none (the ImageNet-pretrained model)."""
    _picker_ui(_("Switch model"), SIDEBAR_RUN_KEY)
