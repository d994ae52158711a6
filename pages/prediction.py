"""Prediction: try the model on your own pets, with top-5, timing, Grad-CAM and an honest "not sure"."""

import streamlit as st

from core import prediction
from core.images import ImageError, LoadedImage, load_image_bytes
from ui.frame import ensure_app_frame
from ui.pickers import image_picker_ui
from ui.prediction import gradcam, model_key, novelty_reference, predicted, reference_key
from ui.state import active_model, keep

ensure_app_frame()
st.title("🔮 Prediction: what's your pet?")

loaded_model = active_model()
if loaded_model.kind == "run":
    st.success(
        f"Model: **{loaded_model.label}** ({loaded_model.arch}, {len(loaded_model.classes)} class{'' if len(loaded_model.classes) == 1 else 'es'})."
    )
else:
    st.info(
        f"Model: **{loaded_model.label}**. No fine-tuned run is chosen, so this model predicts the "
        "**1000 ImageNet labels** (e.g. *tabby*, *pug*, *golden retriever*), not your dataset's classes. "
        "Train a run on the Training page and choose it to predict your own breeds."
    )

rule_box = st.expander("⚖️ When does the page say “not sure”?")
with rule_box:
    st.markdown(
        "Softmax always sums to 100 %, so a model *must* pick some class even for a photo of a pumpkin "
        "(“99 % capybara”). The page says **not sure** when no class clearly wins (top probability below "
        "the threshold), when the probabilities are spread out (entropy, 0 = all on one class, 1 = even, "
        "above the threshold), or, for a run, when the photo is **unlike every training image**: the body's "
        "pooled features of the photo, scaled to length 1, are farther from their 5th nearest training image "
        "than for 95 % of the validation images (k-nearest neighbours, Sun et al. 2022). That last check "
        "looks at what the network *sees*, not at its answer, so a Fashion-MNIST run's confident “100 % Bag” "
        "for a photo of a cat is caught too."
    )
    c1, c2 = st.columns(2)
    min_top_prob = c1.slider("Minimum top probability", 0.0, 1.0, 0.5, 0.05, key=keep("pred_min_prob"))
    max_entropy = c2.slider("Maximum entropy", 0.0, 1.0, 0.6, 0.05, key=keep("pred_max_entropy"))
show_cam = st.toggle("Grad-CAM for the top class", value=True, key=keep("pred_gradcam"))

source = st.segmented_control(
    "Images from", ["Upload (one or more)", "Dataset or camera"], default="Upload (one or more)", key=keep("pred_input")
)
inputs: list[tuple[str, LoadedImage]] = []
if source == "Dataset or camera":
    picked = image_picker_ui("pred", sources=("Dataset", "Camera"))
    if picked is not None:
        inputs.append(("picked image", picked))
else:
    uploads = st.file_uploader(
        "Upload photos (JPEG, PNG, GIF, WebP, BMP, TIFF)", accept_multiple_files=True, key="pred_uploads"
    )
    for upload in uploads or []:
        try:
            inputs.append((upload.name, load_image_bytes(upload.getvalue(), upload.name)))
        except ImageError as err:
            st.error(f"❌ {err}")

if not inputs:
    st.info("Upload one or more photos, or pick one from the dataset or the camera.")
    st.stop()

# the run's reference is built once, on the first photo (cached on disk), not on every visit
reference, reference_note = novelty_reference(loaded_model)
rule_box.caption(f"Distance check {'on' if reference else 'off'}: {reference_note}.")
rule = prediction.rule_for(reference, min_top_prob=min_top_prob, max_entropy=max_entropy)
for n, (name, item) in enumerate(inputs):
    result = predicted(
        model_key(loaded_model), item.digest, rule, reference_key(reference), loaded_model, item.image, reference
    )
    with st.container(border=True):
        left, middle, right = st.columns([1, 1.6, 1])
        left.image(item.image, caption=name, width="stretch")
        for note in item.notes:
            left.caption(f"ℹ️ {note}")
        with middle:
            if result.not_sure:
                st.warning(
                    f"🤔 **Not sure.** Best guess *{result.top}* ({result.top_prob:.0%}), but "
                    + "; ".join(result.reasons)
                    + "."
                )
            else:
                st.markdown(f"### {result.top} — {result.top_prob:.0%}")
            st.plotly_chart(prediction.top_k_chart(result), key=f"pred_chart_{n}")
            c1, c2, c3 = st.columns(3)
            c1.metric("inference time", f"{result.seconds * 1000:.0f} ms")
            c2.metric("entropy", f"{result.entropy:.2f}")
            if result.distance is None:
                c3.metric("energy", f"{result.energy:.2f}")
            else:
                c3.metric("distance to training", f"{result.distance:.3f}")
            st.caption(f"Model: {loaded_model.label}")
        if show_cam:
            cam = gradcam(model_key(loaded_model), item.digest, result.indices[0], loaded_model, item.image)
            right.image(cam, caption=f"Grad-CAM for “{result.top}”: where the evidence was", width="stretch")
