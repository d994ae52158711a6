"""Augmentation: fastai's item and batch transforms on one image, and what the model finally receives."""

import streamlit as st

from core import augmentation
from core.augmentation import AugConfig
from core.i18n import _
from ui.augmentation import GALLERY_COLUMNS, code_caption, gallery, grid
from ui.frame import ensure_app_frame
from ui.pickers import image_picker_ui
from ui.tab_store import keep, stop_page

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

keep("aug_seed")
st.session_state.setdefault("aug_seed", 0)


def new_samples() -> None:
    st.session_state["aug_seed"] += 1


loaded = image_picker_ui("aug")
if loaded is None:
    st.info(_("Pick an image above (from the dataset, an upload or the camera) to see its augmentations."))
    stop_page()

controls, shown = st.columns([1.1, 2.4], gap="large")
with controls:
    st.markdown(_("##### Item transforms (per image, CPU)"))
    presize = st.toggle(
        _("Presizing (the lesson's recipe)"),
        value=True,
        key=keep("aug_presize"),
        help=_(
            "Resize every image to a large square first (item transform), then augment and crop to the final "
            "size in one go on the batch: fewer interpolations, fewer empty borders."
        ),
    )
    size = st.select_slider(
        _("Final size (px)"),
        [128, 160, 192, 224, 256, 320],
        value=224,
        key=keep("aug_size", options=[128, 160, 192, 224, 256, 320]),
    )
    item_size, item_tfm, method, pad_mode = 460, "resize", "crop", "reflection"
    if presize:
        item_size = st.slider(_("Item Resize size (px)"), 256, 640, 460, 4, key=keep("aug_item_size"))
    else:
        item_tfm = st.radio(
            _("Item transform"),
            ["resize", "random_resized_crop"],
            format_func={"resize": "Resize", "random_resized_crop": "RandomResizedCrop"}.get,
            horizontal=True,
            key=keep("aug_item_tfm"),
        )
        if item_tfm == "resize":
            method = st.radio(
                _("Resize method"),
                augmentation.METHODS,
                horizontal=True,
                key=keep("aug_method", options=augmentation.METHODS),
            )
    pad_mode = st.radio(
        _("Padding mode (pad resize and warps)"),
        augmentation.PAD_MODES,
        horizontal=True,
        key=keep("aug_pad_mode", options=augmentation.PAD_MODES),
    )
    min_scale = st.slider(
        _("min_scale (smallest crop, share of the image area)"), 0.08, 1.0, 0.75, 0.01, key=keep("aug_min_scale")
    )

    st.markdown(_("##### Batch transforms: `aug_transforms`"))
    c1, c2 = st.columns(2)
    do_flip = c1.checkbox("do_flip", value=True, key=keep("aug_do_flip"))
    flip_vert = c2.checkbox("flip_vert", value=False, key=keep("aug_flip_vert"))
    max_rotate = st.slider(_("max_rotate (degrees)"), 0.0, 45.0, 10.0, 1.0, key=keep("aug_max_rotate"))
    max_zoom = st.slider("max_zoom", 1.0, 2.0, 1.1, 0.05, key=keep("aug_max_zoom"))
    max_warp = st.slider("max_warp", 0.0, 0.6, 0.2, 0.05, key=keep("aug_max_warp"))
    max_lighting = st.slider("max_lighting", 0.0, 0.9, 0.2, 0.05, key=keep("aug_max_lighting"))
    p_affine = st.slider(
        _("p_affine (chance of flip/rotate/zoom/warp)"), 0.0, 1.0, 0.75, 0.05, key=keep("aug_p_affine")
    )
    p_lighting = st.slider(
        _("p_lighting (chance of brightness/contrast)"), 0.0, 1.0, 0.75, 0.05, key=keep("aug_p_lighting")
    )

config = AugConfig(
    size=size,
    presize=presize,
    item_size=item_size,
    item_tfm=item_tfm,
    method=method,
    pad_mode=pad_mode,
    min_scale=min_scale,
    do_flip=do_flip,
    flip_vert=flip_vert,
    max_rotate=max_rotate,
    max_zoom=max_zoom,
    max_warp=max_warp,
    max_lighting=max_lighting,
    p_affine=p_affine,
    p_lighting=p_lighting,
)

with shown:
    c1, c2, c3 = st.columns([1, 1, 1.2])
    rows = c1.select_slider(
        _("Grid"), [2, 3, 4], value=3, format_func=lambda r: f"{r}×{r}", key=keep("aug_rows", options=[2, 3, 4])
    )
    c2.number_input(_("Seed"), 0, 1_000_000, key="aug_seed")
    c3.button(_("🎲 New samples"), on_click=new_samples, key="aug_new", width="stretch")
    seed = int(st.session_state["aug_seed"])
    with st.spinner(_("Augmenting with fastai's transforms…")):
        samples, first, normalised = grid(loaded.digest, config, rows * rows, seed, loaded.image)
    st.caption(
        _("{n} training samples of the same photo, {size}×{size} px, seed {seed}.").format(
            n=rows * rows, size=size, seed=seed
        )
    )
    for r in range(rows):
        cols = st.columns(rows)
        for c, col in enumerate(cols):
            col.image(samples[r * rows + c], width="stretch")

st.header(_("Resize methods and padding modes"))
st.markdown(
    _(
        "Models need square images of one size. **Crop** keeps the pixels but may cut off the pet; **pad** keeps "
        "the whole photo and fills the rest (mirrored, black, or the edge pixels repeated); **squish** keeps "
        "everything but distorts the shape. `RandomResizedCrop` picks a different part of the photo every epoch."
    )
)
views = gallery(loaded.digest, size, min(min_scale, 0.5), seed, loaded.image)
cols = st.columns(GALLERY_COLUMNS)  # wide enough that a caption's code breaks only where it may
for i, (name, img) in enumerate(views.items()):
    cols[i % GALLERY_COLUMNS].image(img, caption=code_caption(name), width="stretch")

st.header(_("What the model receives"))
st.markdown(
    _(
        "After augmentation, fastai's `Normalize.from_stats(*imagenet_stats)` subtracts the ImageNet mean and "
        "divides by its standard deviation per channel, because the pretrained model learnt from images scaled "
        "that way. The tensor is no longer an image (values are roughly −2…+2.6): shown here stretched to "
        "its own min…max."
    )
)
c1, c2 = st.columns([1, 2.4])
c1.image(augmentation.to_pil(first), caption=_("first sample, pixels in [0, 1]"), width="stretch")
c1.image(augmentation.normalised_view(normalised), caption=augmentation.describe(normalised), width="stretch")
c2.plotly_chart(augmentation.channel_histograms(first, normalised), key="aug_hist")

st.header(_("The fastai code"))
st.caption(_("Updates with the controls. Copy it into a notebook: `preview(image)` returns exactly the grid above."))
st.code(augmentation.fastai_code(config, rows * rows, seed), language="python")
