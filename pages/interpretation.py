"""Interpretation: where the active run goes wrong (confusion matrix, top losses, most confused)."""

import numpy as np
import streamlit as st

from core import interpretation as interp
from core.models import WEIGHTS_FILE
from ui.frame import ensure_app_frame
from ui.interpretation import confusion_cells_ui
from ui.runs import run_picker_ui, run_predictions, run_record, thumbnail
from ui.state import ACTIVE_RUN

MAX_CELLS = 6  # a box around many cells shows the images of the first six

ensure_app_frame()
st.title("🧭 Interpretation: where does the model go wrong?")
st.caption(
    "fastai's `ClassificationInterpretation` for the active run, from its validation predictions "
    "(computed once when the run was trained and stored with it)."
)

run_picker_ui("interp_run")
run_id = st.session_state.get(ACTIVE_RUN)
if not run_id:
    st.info("No run is active: train one on the **Training** page, or pick one above.")
    st.stop()
run = run_record(run_id)
if run is None:
    st.stop()
try:
    preds = run_predictions(str(run.path), (run.path / WEIGHTS_FILE).stat().st_mtime, len(run.record.classes))
except ValueError as err:  # runs.RecordError: damaged preds.npz, object arrays, wrong shapes
    st.warning(f"This run's stored predictions cannot be used ({err}): retrain it to interpret it.")
    st.stop()
if preds is None or "probs" not in preds:
    st.warning("This run has no stored validation predictions (preds.npz): retrain it to interpret it.")
    st.stop()

classes = list(run.record.classes)
probs, targets = preds["probs"], preds["targets"]
paths = list(run.record.valid_paths or [""] * len(targets))
pred_idx = probs.argmax(1)
cm = interp.confusion_matrix(targets, pred_idx, len(classes))
err = interp.error_rate(probs, targets)

st.subheader(run.title)
c1, c2, c3, c4 = st.columns(4)
c1.metric("error rate", f"{err:.2%}")
c2.metric("accuracy", f"{1 - err:.2%}")
c3.metric("validation images", len(targets))
c4.metric("classes", len(classes))

st.header("Scoreboard")
st.dataframe(
    interp.scoreboard(err, run.title, len(classes)).style.format({"error_rate": "{:.2%}", "accuracy": "{:.2%}"}),
    hide_index=True,
)
st.caption("The published numbers are on the 37 Oxford-IIIT Pet breeds; compare like with like.")

st.header("Confusion matrix")
st.caption(
    "Rows: actual class; columns: predicted. Click a cell, or choose one below, to see its images; "
    "the box and lasso tools (top right of the chart) select several cells at once."
)
shown_cells = confusion_cells_ui(cm, classes, run_id)
if len(shown_cells) > MAX_CELLS:
    st.caption(f"{len(shown_cells)} cells selected: showing the first {MAX_CELLS}.")
for actual, predicted in shown_cells[:MAX_CELLS]:
    idx = interp.cell_items(probs, targets, actual, predicted)
    st.markdown(
        f"**actual {classes[actual]}, predicted {classes[predicted]}**: {len(idx)} image{'' if len(idx) == 1 else 's'}"
    )
    cols = st.columns(6)
    for k, i in enumerate(idx[:24]):
        img = thumbnail(paths[i]) if paths[i] else None
        with cols[k % 6]:
            if img is None:
                st.caption(f"(image {i} is no longer on disk)")
            else:
                st.image(img, caption=f"p={probs[i, predicted]:.2f}")

st.header("Top losses")
k = st.slider("How many", 3, 30, 9, key="interp_k")
top = interp.top_losses(probs, targets, classes, paths, k=min(k, len(targets)))
cols = st.columns(3)
for j, row in enumerate(top.itertuples()):
    img = thumbnail(row.path) if row.path else None
    with cols[j % 3]:
        label = f"{row.predicted} / {row.actual} / {row.loss:.2f} / {row.prob_actual:.2f}"
        if img is None:
            st.caption(f"{label} (image missing)")
        else:
            st.image(img, caption=label)
st.caption("Caption: predicted / actual / loss / probability of the actual class (fastai's plot_top_losses).")

st.header("Most confused")
min_val = st.number_input("min_val", 1, 100, 1, key="interp_min_val")
confused = interp.most_confused(cm, classes, int(min_val))
if confused.empty:
    st.success(
        f"No pair of classes is confused {'even once' if int(min_val) == 1 else f'{int(min_val)} times or more'}."
    )
else:
    st.dataframe(confused, hide_index=True)

st.header("Per-class error")
st.dataframe(
    interp.per_class_error(cm, classes).style.format({"error_rate": "{:.1%}"}),
    hide_index=True,
)
missing = int(np.sum([not p for p in paths]))
if missing:
    st.caption(f"{missing} validation image path{' was' if missing == 1 else 's were'} not recorded with this run.")
