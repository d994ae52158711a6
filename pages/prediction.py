"""Prediction: try the model on your own pets, with top-5, timing, Grad-CAM and an honest "not sure"."""

import streamlit as st

from core.i18n import _
from core.nets.models import LoadedModel
from core.predict import prediction
from ui.auth import identity
from ui.frame import ensure_app_frame, interactive_fragment
from ui.prediction import (
    model_banner_ui,
    model_key,
    novelty_reference,
    photos_ui,
    predicted,
    reference_key,
    result_ui,
    rule_ui,
)
from ui.state import active_model
from ui.tab_store import keep

ensure_app_frame()
st.title(_("🔮 Prediction: what's your pet?"))

loaded_model = active_model()
model_banner_ui(loaded_model, student=not identity().is_teacher)


@interactive_fragment
def try_the_model(loaded: LoadedModel) -> None:
    """Rules, photos and verdicts: a change here (a photo, a slider, the toggle) reruns only this part of the page."""
    rule_box, min_top_prob, max_entropy = rule_ui()
    show_cam = st.toggle(_("Grad-CAM for the top class"), value=True, key=keep("pred_gradcam", default=True))
    photos = photos_ui()
    if not photos:
        st.info(_("Upload one or more photos, or pick one from the dataset or the camera."))
        return
    # the run's reference is built once, on the first photo (cached on disk), not on every visit
    reference, reference_note = novelty_reference(loaded)
    if reference:
        rule_box.caption(_("Distance check on: {note}.").format(note=reference_note))
    else:
        rule_box.caption(_("Distance check off: {note}.").format(note=reference_note))
    rule = prediction.rule_for(reference, min_top_prob=min_top_prob, max_entropy=max_entropy)
    label = loaded.shown_label()
    check_off = reference_note if reference is None and loaded.kind == "run" else None
    for n, photo in enumerate(photos):
        item = photo.item
        found = predicted(model_key(loaded), item.digest, reference_key(reference), loaded, item.image, reference)
        result_ui(n, photo, prediction.rejudge(found, rule), show_cam, label, check_off)


try_the_model(loaded_model)
