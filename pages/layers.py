"""Layers: what each stage of the CNN sees (Zeiler & Fergus 2014, on your own network and photos)."""

import streamlit as st

from core.i18n import _
from ui.frame import ensure_app_frame
from ui.layers_tabs import (
    TAB_TITLES,
    compare_tab,
    feature_maps_tab,
    filters_tab,
    gradcam_tab,
    layer_view_ui,
    occlusion_tab,
    projection_tab,
    top_patches_tab,
)
from ui.pickers import image_picker_ui
from ui.state import active_model

ensure_app_frame()
st.title(_("🔬 Layers: what each layer sees"))
st.caption(
    _(
        "Early layers react to edges and colours, later ones combine them into textures, parts and whole pets "
        "(Zeiler & Fergus, 2014). That is why fine-tuning can keep the early layers almost as they are."
    )
)

view = layer_view_ui(active_model())  # the model, the stage and the channel every tab looks at
picked = image_picker_ui("viz")
maps, filters, patches, projection, occlusion, gradcam, compare = st.tabs([_(title) for title in TAB_TITLES])
with maps:
    feature_maps_tab(view, picked)
with filters:
    filters_tab(view)
with patches:
    top_patches_tab(view)
with projection:
    projection_tab(view, picked)
with occlusion:
    occlusion_tab(view, picked)
with gradcam:
    gradcam_tab(view, picked)
with compare:
    compare_tab(view, picked)
