"""The Interpretation page's parts: the run's validation predictions, the scoreboard, the confusion matrix (a
clickable chart and a cell picker that always agree) and its cells' images, top losses, most confused, per class."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from core.data.images import ImageError
from core.i18n import _, n_, num, pct, translated_columns
from core.nets.models import WEIGHTS_FILE
from core.store.runs import RunInfo
from core.train import interpretation as interp
from ui.data import thumbnail
from ui.runs import run_picker_ui, run_predictions, run_record
from ui.state import ACTIVE_RUN
from ui.tab_store import relabelled, stop_page

CELL_KEY = "interp_cell"  # the selectbox
MAX_CELLS = 6  # a box around many cells shows the images of the first six
SHOWN_KEY = "interp_shown"  # non-widget: (run id, cells) last picked in the chart or the selectbox


def _valid(cells, n: int) -> list[tuple[int, int]]:
    """Cells that exist in an n-class matrix (a stale selection from another run is dropped)."""
    out = []
    for cell in cells or []:
        try:
            a, p = (int(v) for v in cell)
        except (TypeError, ValueError):
            continue
        if 0 <= a < n and 0 <= p < n and (a, p) not in out:
            out.append((a, p))
    return out


def confusion_cells_ui(cm: np.ndarray, classes: list[str], run_id: str) -> list[tuple[int, int]]:
    """Draw the confusion matrix and the "Cell" picker; return the (actual, predicted) cells to show.

    A click on a cell, or a box / lasso around several, picks them; choosing in the picker picks one.
    The last of the two wins. The chart's key carries the run id, so another run starts unselected.
    """
    n = len(classes)
    chart_key = f"interp_cm_{run_id}"
    cells = [(a, p) for a in range(n) for p in range(n) if cm[a, p] > 0 and (a != p or n <= 10)]
    cells.sort(key=lambda c: (c[0] == c[1], -cm[c]))

    def on_select() -> None:
        picked = interp.selected_cells(st.session_state.get(chart_key), classes)
        if picked:
            st.session_state[SHOWN_KEY] = (run_id, picked)
            if picked[0] in cells:
                st.session_state[CELL_KEY] = picked[0]

    def on_pick() -> None:
        choice = st.session_state.get(CELL_KEY)
        st.session_state[SHOWN_KEY] = (run_id, [choice] if choice is not None else [])

    if st.session_state.get(CELL_KEY) not in cells:  # stale (another run) or none yet: the worst mistake first
        st.session_state.pop(CELL_KEY, None)
    st.plotly_chart(
        interp.confusion_figure(cm, classes),
        on_select=on_select,
        selection_mode=("points", "box", "lasso"),
        key=chart_key,
    )
    names = {  # the options' labels, in this run's language
        c: n_(
            "actual {actual} → predicted {predicted} ({n} image)",
            "actual {actual} → predicted {predicted} ({n} images)",
            int(cm[c]),
        ).format(actual=classes[c[0]], predicted=classes[c[1]], n=cm[c])
        for c in cells
    }
    choice = st.selectbox(
        _("Cell"),
        cells,
        index=0 if cells else None,
        format_func=names.get,
        key=relabelled(CELL_KEY, cells, names.get),
        on_change=on_pick,
    )
    shown_run, shown = st.session_state.get(SHOWN_KEY) or (None, [])
    picked = _valid(shown, n) if shown_run == run_id else []
    return picked or ([choice] if choice is not None else [])


@dataclass(frozen=True)
class Validation:
    """A run's stored validation predictions, as the page reads them."""

    run: RunInfo
    probs: np.ndarray  # (N, C) probabilities
    targets: np.ndarray  # (N,) actual class indices
    paths: list[str]  # (N,) file of each prediction, "" where the run did not record it

    @property
    def classes(self) -> list[str]:
        return list(self.run.record.classes)

    @property
    def confusion(self) -> np.ndarray:
        return interp.confusion_matrix(self.targets, self.probs.argmax(1), len(self.classes))

    @property
    def error_rate(self) -> float:
        return interp.error_rate(self.probs, self.targets)


def validation_ui() -> Validation:
    """The active run (with its picker) and its stored validation predictions; the page ends here, saying why,
    when there is no run or its predictions cannot be used."""
    run_picker_ui("interp_run", _("Active run"))
    run_id = st.session_state.get(ACTIVE_RUN)
    if not run_id:
        st.info(_("No run is active: train one on the **Training** page, or pick one above."))
        stop_page()
    run = run_record(run_id)
    if run is None:
        stop_page()
    try:
        preds = run_predictions(str(run.path), (run.path / WEIGHTS_FILE).stat().st_mtime, len(run.record.classes))
    except ValueError as err:  # records.RecordError: damaged preds.npz, object arrays, wrong shapes
        st.warning(
            _("This run's stored predictions cannot be used ({error}): retrain it to interpret it.").format(error=err)
        )
        stop_page()
    if preds is None:
        st.warning(_("This run has no stored validation predictions (preds.npz): retrain it to interpret it."))
        stop_page()
    paths = interp.aligned_paths(run.record.valid_paths, len(preds.targets))  # "" where a path is missing
    return Validation(run, preds.probs, preds.targets, paths)


def scoreboard_ui(found: Validation) -> None:
    """The run's error rate, accuracy and sizes, and the scoreboard beside the published numbers."""
    err, n_classes = found.error_rate, len(found.classes)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(_("error rate"), pct(err, 2))
    c2.metric(_("accuracy"), pct(1 - err, 2))
    c3.metric(_("validation images"), num(len(found.targets)))
    c4.metric(n_("class", "classes", n_classes), n_classes)
    st.header(_("Scoreboard"))
    as_percent = lambda v: pct(v, 2)  # noqa: E731
    st.dataframe(
        translated_columns(interp.scoreboard(err, found.run.title, n_classes)).style.format(
            {_("error_rate"): as_percent, _("accuracy"): as_percent}
        ),
        hide_index=True,
    )
    st.caption(_("The published numbers are on the 37 Oxford-IIIT Pet breeds; compare like with like."))


def cell_images_ui(found: Validation, cells: list[tuple[int, int]]) -> None:
    """The images of each picked confusion-matrix cell (the first MAX_CELLS cells, 24 images each)."""
    if len(cells) > MAX_CELLS:
        st.caption(_("{n} cells selected: showing the first {max}.").format(n=len(cells), max=MAX_CELLS))
    classes = found.classes
    for actual, predicted in cells[:MAX_CELLS]:
        idx = interp.cell_items(found.probs, found.targets, actual, predicted)
        st.markdown(
            n_(
                "**actual {actual}, predicted {predicted}**: {n} image",
                "**actual {actual}, predicted {predicted}**: {n} images",
                len(idx),
            ).format(actual=classes[actual], predicted=classes[predicted], n=len(idx))
        )
        cols = st.columns(6)
        for k, i in enumerate(idx[:24]):
            with cols[k % 6]:
                try:  # one size for every photo: the column's width, square (ui.data.thumbnail)
                    st.image(thumbnail(found.paths[i]), caption=f"p={found.probs[i, predicted]:.2f}", width="stretch")
                except ImageError:
                    st.caption(_("(image {i} is no longer on disk)").format(i=i))


def top_losses_ui(found: Validation) -> None:
    """fastai's plot_top_losses: the images the model was most confidently wrong about."""
    k = st.slider(_("How many"), 3, 30, 9, key="interp_k")
    top = interp.top_losses(found.probs, found.targets, found.classes, found.paths, k=min(k, len(found.targets)))
    cols = st.columns(3)
    for j, row in enumerate(top.itertuples()):
        with cols[j % 3]:
            label = f"{row.predicted} / {row.actual} / {row.loss:.2f} / {row.prob_actual:.2f}"
            try:
                st.image(thumbnail(row.path), caption=label, width="stretch")
            except ImageError:
                st.caption(_("{label} (image missing)").format(label=label))
    st.caption(_("Caption: predicted / actual / loss / probability of the actual class (fastai's plot_top_losses)."))


def most_confused_ui(found: Validation) -> None:
    """fastai's most_confused(min_val): the pairs of classes mixed up at least min_val times."""
    min_val = st.number_input("min_val", 1, 100, 1, key="interp_min_val")
    confused = interp.most_confused(found.confusion, found.classes, int(min_val))
    if not confused.empty:
        st.dataframe(translated_columns(confused), hide_index=True)
    elif int(min_val) == 1:
        st.success(_("No pair of classes is confused even once."))
    else:
        st.success(_("No pair of classes is confused {n} times or more.").format(n=int(min_val)))


def per_class_ui(found: Validation) -> None:
    """Each class's error rate, and how many validation paths the run did not record."""
    st.dataframe(
        translated_columns(interp.per_class_error(found.confusion, found.classes)).style.format(
            {_("error_rate"): lambda v: pct(v, 1)}, na_rep="–"
        ),
        hide_index=True,
    )
    missing = int(np.sum([not p for p in found.paths]))
    if missing:
        st.caption(
            n_(
                "{n} validation image path was not recorded with this run.",
                "{n} validation image paths were not recorded with this run.",
                missing,
            ).format(n=missing)
        )
