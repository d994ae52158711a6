"""The Interpretation page's confusion matrix: a clickable chart and a cell picker that always agree."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core import interpretation as interp
from core.i18n import _, n_
from ui.tab_store import relabelled

CELL_KEY = "interp_cell"  # the selectbox
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
