"""Interpretation: where the active run goes wrong (confusion matrix, top losses, most confused)."""

import streamlit as st

from core.i18n import _
from ui.frame import ensure_app_frame
from ui.interpretation import (
    cell_images_ui,
    confusion_cells_ui,
    most_confused_ui,
    per_class_ui,
    scoreboard_ui,
    top_losses_ui,
    validation_ui,
)

ensure_app_frame()
st.title(_("🧭 Interpretation: where does the model go wrong?"))
st.caption(
    _(
        "fastai's `ClassificationInterpretation` for the active run, from its validation predictions "
        "(computed once when the run was trained and stored with it)."
    )
)
found = validation_ui()  # the active run's stored predictions (the page ends here, saying why, without them)

st.subheader(found.run.title)
scoreboard_ui(found)

st.header(_("Confusion matrix"))
st.caption(
    _(
        "Rows: actual class; columns: predicted. Click a cell, or choose one below, to see its images; "
        "the box and lasso tools (top right of the chart) select several cells at once."
    )
)
cell_images_ui(found, confusion_cells_ui(found.confusion, found.classes, found.run.run_id))

st.header(_("Top losses"))
top_losses_ui(found)

st.header(_("Most confused"))
most_confused_ui(found)

st.header(_("Per-class error"))
per_class_ui(found)
