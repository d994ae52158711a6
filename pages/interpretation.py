"""Interpretation: where the active run goes wrong (confusion matrix, top losses, most confused)."""

import numpy as np
import streamlit as st

from core import interpretation as interp
from core.i18n import _, n_, num, pct, translated_columns
from core.images import ImageError
from core.models import WEIGHTS_FILE
from ui.data import thumbnail
from ui.frame import ensure_app_frame
from ui.interpretation import confusion_cells_ui
from ui.runs import run_picker_ui, run_predictions, run_record
from ui.state import ACTIVE_RUN
from ui.tab_store import stop_page

MAX_CELLS = 6  # a box around many cells shows the images of the first six

ensure_app_frame()
st.title(_("🧭 Interpretation: where does the model go wrong?"))
st.caption(
    _(
        "fastai's `ClassificationInterpretation` for the active run, from its validation predictions "
        "(computed once when the run was trained and stored with it)."
    )
)

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
if preds is None or "probs" not in preds:
    st.warning(_("This run has no stored validation predictions (preds.npz): retrain it to interpret it."))
    stop_page()

classes = list(run.record.classes)
probs, targets = preds["probs"], preds["targets"]
paths = interp.aligned_paths(run.record.valid_paths, len(targets))  # "" where a path is missing
pred_idx = probs.argmax(1)
cm = interp.confusion_matrix(targets, pred_idx, len(classes))
err = interp.error_rate(probs, targets)

st.subheader(run.title)
c1, c2, c3, c4 = st.columns(4)
c1.metric(_("error rate"), pct(err, 2))
c2.metric(_("accuracy"), pct(1 - err, 2))
c3.metric(_("validation images"), num(len(targets)))
c4.metric(n_("class", "classes", len(classes)), len(classes))

st.header(_("Scoreboard"))
as_percent = lambda v: pct(v, 2)  # noqa: E731
st.dataframe(
    translated_columns(interp.scoreboard(err, run.title, len(classes))).style.format(
        {_("error_rate"): as_percent, _("accuracy"): as_percent}
    ),
    hide_index=True,
)
st.caption(_("The published numbers are on the 37 Oxford-IIIT Pet breeds; compare like with like."))

st.header(_("Confusion matrix"))
st.caption(
    _(
        "Rows: actual class; columns: predicted. Click a cell, or choose one below, to see its images; "
        "the box and lasso tools (top right of the chart) select several cells at once."
    )
)
shown_cells = confusion_cells_ui(cm, classes, run_id)
if len(shown_cells) > MAX_CELLS:
    st.caption(_("{n} cells selected: showing the first {max}.").format(n=len(shown_cells), max=MAX_CELLS))
for actual, predicted in shown_cells[:MAX_CELLS]:
    idx = interp.cell_items(probs, targets, actual, predicted)
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
                st.image(thumbnail(paths[i]), caption=f"p={probs[i, predicted]:.2f}", width="stretch")
            except ImageError:
                st.caption(_("(image {i} is no longer on disk)").format(i=i))

st.header(_("Top losses"))
k = st.slider(_("How many"), 3, 30, 9, key="interp_k")
top = interp.top_losses(probs, targets, classes, paths, k=min(k, len(targets)))
cols = st.columns(3)
for j, row in enumerate(top.itertuples()):
    with cols[j % 3]:
        label = f"{row.predicted} / {row.actual} / {row.loss:.2f} / {row.prob_actual:.2f}"
        try:
            st.image(thumbnail(row.path), caption=label, width="stretch")
        except ImageError:
            st.caption(_("{label} (image missing)").format(label=label))
st.caption(_("Caption: predicted / actual / loss / probability of the actual class (fastai's plot_top_losses)."))

st.header(_("Most confused"))
min_val = st.number_input("min_val", 1, 100, 1, key="interp_min_val")
confused = interp.most_confused(cm, classes, int(min_val))
if confused.empty:
    if int(min_val) == 1:
        st.success(_("No pair of classes is confused even once."))
    else:
        st.success(_("No pair of classes is confused {n} times or more.").format(n=int(min_val)))
else:
    st.dataframe(translated_columns(confused), hide_index=True)

st.header(_("Per-class error"))
st.dataframe(
    translated_columns(interp.per_class_error(cm, classes)).style.format(
        {_("error_rate"): lambda v: pct(v, 1)}, na_rep="–"
    ),
    hide_index=True,
)
missing = int(np.sum([not p for p in paths]))
if missing:
    st.caption(
        n_(
            "{n} validation image path was not recorded with this run.",
            "{n} validation image paths were not recorded with this run.",
            missing,
        ).format(n=missing)
    )
