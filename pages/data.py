"""Data: choose a dataset, label it with the lesson's regex, and look at it before training."""

import streamlit as st

from core import exploration
from core.datasets import check_dataset, split_counts
from core.i18n import _, num, pct, translated_columns
from core.settings import data_dir
from ui.auth import identity
from ui.data import (
    apply_labelling,
    dataset_files_ui,
    label_result_ui,
    labelling_ui,
    left_out_warning_ui,
    normalisation_ui,
    sample_batch_ui,
    unreadable_files_ui,
)
from ui.frame import ensure_app_frame
from ui.sources import chosen_ui, class_sources_ui, folder_source_ui, own_classes_ui, pets_source_ui, zip_source_ui
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

base = data_dir()

# ---------------------------------------------------------------- 1. choose the data
st.header(_("1 · Choose the data"))
in_class = identity().class_mode
tabs = st.tabs(
    ["🐾 Oxford-IIIT Pet", _("📁 Local folder"), _("🗜️ Upload a .zip"), _("📸 Your own classes")]
    + ([_("🏫 Class datasets")] if in_class else [])
)
with tabs[0]:
    pets_source_ui(base)
with tabs[1]:
    folder_source_ui(base)
with tabs[2]:
    zip_source_ui(base)
with tabs[3]:
    own_classes_ui()
if in_class:
    with tabs[4]:
        class_sources_ui()
chosen_ui()

spec = active_dataset()
if spec is None:
    st.info(
        _("No dataset chosen yet. Download Oxford-IIIT Pet, point to a folder, upload a zip or make your own classes.")
    )
    stop_page()

# ---------------------------------------------------------------- 2. label
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
items = scan.items

# ---------------------------------------------------------------- 3. explore
st.header(_("3 · Explore"))
for check in check_dataset(scan):  # datasets that cannot teach anything are named before training
    (st.error if check.blocking else st.warning)(check.message, icon="⛔" if check.blocking else "⚠️")
left_out_warning_ui(scan)

st.subheader(_("Class balance"))
st.caption(
    _(
        "Roughly equal counts per class mean plain accuracy is a fair metric. In Pets the cat breeds are the "
        "capitalised names."
    )
)
st.plotly_chart(exploration.class_balance_figure(items), key="data_balance")

st.subheader(_("A batch of examples"))
rows = sample_batch_ui(scan)

st.subheader(_("Image sizes"))
st.caption(_("Photos come in every size, read here from the file headers only. The model needs one size: Resize(224)."))
c1, c2 = st.columns([3, 1])
c1.plotly_chart(exploration.size_figure(items), key="data_sizes")
for name, value in exploration.size_summary(items).items():
    c2.metric(_(name), f"{num(value, 0)} px")

st.subheader(_("Training and validation split"))
st.caption(
    _(
        "`valid_pct={valid_pct}`, `seed={seed}`: a random {share} of the images is held out to measure error on "
        "photos the model never trained on. The seed makes it the same split every time."
    ).format(valid_pct=spec.valid_pct, seed=spec.seed, share=pct(spec.valid_pct))
)
c1, c2 = st.columns([1, 2])
c1.metric(_("train"), num(int((~items["is_valid"]).sum())))
c1.metric(_("valid"), num(int(items["is_valid"].sum())))
c2.dataframe(translated_columns(split_counts(items)), hide_index=True, height=260)

st.subheader(_("ImageNet normalisation"))
st.caption(
    _(
        "A pretrained model expects inputs scaled like ImageNet: each channel has the ImageNet mean subtracted "
        "and is divided by its std, so values sit around 0 with spread about 1."
    )
)
normalisation_ui(rows.iloc[0]["path"] if len(rows) else items.iloc[0]["path"])

unreadable_files_ui(scan)
