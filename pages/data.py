"""Data: choose a dataset, label it with the lesson's regex, and look at it before training."""

import streamlit as st

from core.i18n import _
from core.settings import data_dir
from ui.data import (
    apply_labelling,
    checks_ui,
    class_balance_ui,
    dataset_files_ui,
    image_sizes_ui,
    label_result_ui,
    labelling_ui,
    normalisation_ui,
    sample_batch_ui,
    split_ui,
    unreadable_files_ui,
)
from ui.frame import ensure_app_frame
from ui.sources import sources_ui
from ui.state import active_dataset, scan_active, shown_name
from ui.tab_store import stop_page

ensure_app_frame()
st.title(_("📂 Data: what's in the dataset?"))
st.markdown(
    _(
        "Lesson 1 starts by looking at the data. The Oxford-IIIT Pet dataset has **37 breeds** "
        "(12 cats, 25 dogs) and about 7,400 photos; each label is hidden in the file name, e.g. "
        "`great_pyrenees_173.jpg`. Choose a source below, label it, then explore it."
    )
)

st.header(_("1 · Choose the data"))
sources_ui(data_dir())  # Oxford-IIIT Pet, a folder, a zip, your own classes (and the class's, in class mode)
spec = active_dataset()
if spec is None:
    st.info(
        _("No dataset chosen yet. Download Oxford-IIIT Pet, point to a folder, upload a zip or make your own classes.")
    )
    stop_page()

st.header(_("2 · Label: {name}").format(name=shown_name(spec)))
rel_paths = dataset_files_ui(spec)
if rel_paths is None:
    stop_page()
label_from, pattern, match_on, result = labelling_ui(spec, rel_paths)
if result is not None:
    label_result_ui(result)
    spec = apply_labelling(spec, label_from, pattern, match_on, result)
scan = scan_active()
if scan is None or scan.n_images == 0:
    stop_page()

st.header(_("3 · Explore"))
checks_ui(scan)
st.subheader(_("Class balance"))
class_balance_ui(scan.items)
st.subheader(_("A batch of examples"))
rows = sample_batch_ui(scan)
st.subheader(_("Image sizes"))
image_sizes_ui(scan.items)
st.subheader(_("Training and validation split"))
split_ui(spec, scan.items)
st.subheader(_("ImageNet normalisation"))
st.caption(
    _(
        "A pretrained model expects inputs scaled like ImageNet: each channel has the ImageNet mean subtracted "
        "and is divided by its std, so values sit around 0 with spread about 1."
    )
)
normalisation_ui(rows.iloc[0]["path"] if len(rows) else scan.items.iloc[0]["path"])
unreadable_files_ui(scan)
