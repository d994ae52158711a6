"""Augmentation: fastai's item and batch transforms on one image, and what the model finally receives."""

import streamlit as st

from core.data import augmentation
from core.i18n import _
from ui.augmentation import controls_ui, gallery_ui, model_input_ui, samples_ui, seed_state
from ui.frame import ensure_app_frame
from ui.pickers import image_picker_ui
from ui.tab_store import stop_page

ensure_app_frame()
st.title(_("🎛️ Augmentation: one photo, many training samples"))
st.markdown(
    _(
        "Each epoch fastai shows the model a slightly different version of every photo: flipped, rotated, "
        "zoomed, warped, brighter or darker. The model cannot memorise pixels, so it learns what a breed looks "
        "like. Everything below is produced by fastai's own transforms (`Resize`, `RandomResizedCrop`, "
        "`aug_transforms`) in training mode, exactly as a `DataLoader` applies them."
    )
)
seed_state()  # before the page can end: the seed is kept (and forgotten) with the other controls

photo = image_picker_ui("aug")
if photo is None:
    st.info(_("Pick an image above (from the dataset, an upload or the camera) to see its augmentations."))
    stop_page()

controls, shown = st.columns([1.1, 2.4], gap="large")
with controls:
    config = controls_ui()
with shown:
    samples = samples_ui(photo, config)

st.header(_("Resize methods and padding modes"))
st.markdown(
    _(
        "Models need square images of one size. **Crop** keeps the pixels but may cut off the pet; **pad** keeps "
        "the whole photo and fills the rest (mirrored, black, or the edge pixels repeated); **squish** keeps "
        "everything but distorts the shape. `RandomResizedCrop` picks a different part of the photo every epoch."
    )
)
gallery_ui(photo, config, samples.seed)

st.header(_("What the model receives"))
st.markdown(
    _(
        "After augmentation, fastai's `Normalize.from_stats(*imagenet_stats)` subtracts the ImageNet mean and "
        "divides by its standard deviation per channel, because the pretrained model learnt from images scaled "
        "that way. The tensor is no longer an image (values are roughly −2…+2.6): shown here stretched to "
        "its own min…max."
    )
)
model_input_ui(samples)

st.header(_("The fastai code"))
st.caption(_("Updates with the controls. Copy it into a notebook: `preview(image)` returns exactly the grid above."))
st.code(augmentation.fastai_code(config, samples.n, samples.seed), language="python")
