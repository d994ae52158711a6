"""The Layers page's parts, one `*_ui()` each: the stage and channel above the tabs, then one function per tab.

Every tab looks at the same LayerView (the model, the stage, the channel) and the picked image; the
computing is core's, cached in ui.layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.express as px
import streamlit as st

from core.data.images import LoadedImage
from core.i18n import N_, _, listed, n_, num, pct
from core.inside import patches
from core.inside.activations import channel_order, channel_overlay_heat, feature_grid_figure
from core.inside.filters import filter_change, filter_grid
from core.inside.gradcam import overlay
from core.inside.occlusion import drop_caption, drop_overlay, occlusion_figures
from core.nets.models import LoadedModel
from ui import layers
from ui.layers import StageInfo
from ui.state import scan_active
from ui.tab_store import keep, relabelled

TAB_TITLES = (N_("Feature maps"), N_("Filters"), N_("Top patches"), N_("Projection"), N_("Occlusion"), "Grad-CAM",
              N_("Compare networks"))  # fmt: skip
OCCLUSION_ASKED = "viz_occ_asked"  # the occlusion settings the button was last pressed for (the map is cached)
PICK_FIRST = N_("Pick an image above first.")


@dataclass(frozen=True)
class LayerView:
    """What every tab looks at: the model, its weights' stable name, the input size, the stage, the channel."""

    loaded: LoadedModel
    mid: str
    size: int
    info: StageInfo
    channel: int

    @property
    def stage_name(self) -> str:
        return _(self.info.label)


def layer_view_ui(loaded: LoadedModel) -> LayerView:
    """The model line, the stages' shapes and receptive fields, the Stage and Channel pickers; returns the view."""
    size = loaded.img_size
    st.markdown(_("**Model:** {model} · input {size}×{size} px").format(model=loaded.shown_label(), size=size))
    infos = layers.stage_infos(loaded.arch, size)
    with st.expander(_("Stages: output shapes and receptive fields"), expanded=False):
        st.dataframe(layers.stage_table(infos), hide_index=True, width="stretch")
        st.caption(_("The receptive field is the square of input pixels one unit of a stage can see; it grows with "
                     "depth, so later units can respond to whole ears or faces."))  # fmt: skip
    labels = [i.label for i in infos]
    c1, c2 = st.columns([2, 1])
    stage_label = c1.selectbox(
        _("Stage"),
        labels,
        index=min(2, len(labels) - 1),
        format_func=_,  # kept in English (the tab's store), shown translated
        key=relabelled(keep("viz_stage", options=labels), labels, _),
    )
    info = infos[labels.index(stage_label)]
    n_channels = info.shape[1]
    channel_key = keep("viz_channel", valid=lambda c: 0 <= c < n_channels)
    channel = int(
        c2.number_input(_("Channel (0–{last})").format(last=n_channels - 1), 0, n_channels - 1, 0, key=channel_key)
    )
    view = LayerView(loaded, layers.model_id(loaded), size, info, channel)
    st.caption(
        _(
            "`{stage}` outputs `{shape}`; each unit sees {field}×{field} px of the {size}×{size} input, "
            "units are {jump} px apart."
        ).format(
            stage=view.stage_name,
            shape=f"(B, {', '.join(map(str, info.shape[1:]))})",
            field=info.field.size,
            size=size,
            jump=int(info.field.jump),
        )
    )
    return view


def feature_maps_tab(view: LayerView, picked: LoadedImage | None) -> None:
    """The stage's strongest channels as a grid, and the chosen channel over the image and on its own."""
    if picked is None:
        st.info(_("Pick an image above to see its feature maps."))
        return
    loaded, size, channel = view.loaded, view.size, view.channel
    act, probs = layers.feature_maps(view.mid, view.info.path, picked.digest, size, loaded, picked.image)
    top = int(probs.argmax())
    st.markdown(_("Prediction: **{label}** ({p})").format(label=loaded.classes[top], p=pct(probs[top])))
    order = channel_order(act)
    counts = layers.channel_counts(len(order))  # only as many as the stage has (24 for features.3)
    n_show = counts[0]
    if len(counts) > 1:
        n_show = st.select_slider(
            _("Channels shown"), counts, value=min(32, counts[-1]), key=keep("viz_nshow", options=counts)
        )
    shown = order[:n_show]
    g1, g2 = st.columns([3, 2])
    with g1:
        title = n_("{stage}: strongest {n} channel", "{stage}: strongest {n} channels", len(shown))
        st.plotly_chart(feature_grid_figure(act, shown, ncols=8, title=title.format(stage=view.stage_name,
                                                                                    n=len(shown))), key="viz_grid")  # fmt: skip
        st.caption(
            _(
                "Each tile is one channel's map over the image, brightest = strongest, sorted by mean "
                "activation. Strongest here: {channels} — type one into *Channel* to enlarge it."
            ).format(channels=listed(shown[:8]))
        )
    with g2:
        st.image(
            overlay(layers.model_view(picked.image, size), channel_overlay_heat(act, channel), alpha=0.55),
            caption=_("channel {channel} over the image (rank {rank} of {n})").format(
                channel=channel, rank=int((order == channel).nonzero()[0][0]) + 1, n=len(order)
            ),
        )
        big = px.imshow(act[channel], color_continuous_scale="Viridis", title=_("channel {n}").format(n=channel))
        big.update_traces(hovertemplate="x %{x}, y %{y}: %{z:.2f}<extra></extra>")
        big.update_layout(margin=dict(l=0, r=0, t=30, b=0), height=300)
        st.plotly_chart(big, key="viz_channel_map")
        st.caption(_("Where this channel fires: one detector slid over every position of the image."))


def filters_tab(view: LayerView) -> None:
    """The first conv's filters: ImageNet's beside the fine-tuned run's (with how far they moved), or random init."""
    loaded = view.loaded
    pretrained, why = layers.imagenet_or_message(loaded.arch)
    if pretrained is None:
        st.warning(why)
        return
    imagenet_filters = layers.first_filters(layers.model_id(pretrained), pretrained)
    f1, f2 = st.columns(2)
    f1.image(
        filter_grid(imagenet_filters), caption=_("ImageNet-pretrained {arch}: first conv").format(arch=loaded.arch)
    )
    f1.caption(_("Learnt on ImageNet: colour blobs and oriented edges, the alphabet every later layer is built from."))
    if loaded.kind == "run":
        run_filters = layers.first_filters(view.mid, loaded)
        f2.image(
            filter_grid(run_filters),
            caption=_("{model}: first conv after fine-tuning").format(model=loaded.shown_label()),
        )
        value, note = layers.filter_change_note(filter_change(imagenet_filters, run_filters))
        f2.metric(_("median change per filter"), value)
        f2.caption(note)
        return
    random_init, _why = layers.imagenet_or_message(loaded.arch, pretrained=False)
    if random_init is not None:
        f2.image(
            filter_grid(layers.first_filters(layers.model_id(random_init), random_init)),
            caption=_("{arch}, random init (seed {seed})").format(arch=loaded.arch, seed=layers.RANDOM_SEED),
        )
    f2.caption(_("Untrained filters are noise. Choose a fine-tuned run (sidebar, Switch model) to compare it here."))


def top_patches_tab(view: LayerView) -> None:
    """The dataset images that excite the channel most, cropped to its receptive field, from a saved index."""
    st.caption(
        _(
            "For the chosen channel, the dataset images that excite it most, cropped to the unit's receptive "
            "field (Zeiler & Fergus, Fig. 2). Early stages pick colours and edges; late ones, pet parts."
        )
    )
    scan = scan_active()
    if scan is None or scan.n_images == 0:
        st.info(_("Top patches need a dataset: choose one on the Data page."))
        return
    default_n = min(scan.n_images, layers.SCAN_IMAGES)
    limit = st.number_input(
        _("Images to scan"), min(9, scan.n_images), scan.n_images, default_n, step=50, key="viz_patch_n"
    )
    paths = patches.sample_paths(scan.items["path"].astype(str).tolist(), int(limit))
    fingerprint = f"{scan.fingerprint}-n{int(limit)}"
    index_file = layers.patch_index_path(view.mid, fingerprint, view.info.path, view.size)
    if not index_file.is_file():
        st.write(
            n_(
                "No index yet for `{stage}` of this model over {n} image.",
                "No index yet for `{stage}` of this model over {n} images.",
                len(paths),
            ).format(stage=view.stage_name, n=len(paths))
        )
        request = layers.patch_index_request(view.loaded, view.mid, fingerprint, view.info.path, view.size, paths)
        layers.patch_index_job_ui(request, scan.spec)  # a job: built here on a laptop, by the worker in class mode
        return
    mtime = index_file.stat().st_mtime
    index = layers.load_patch_index(str(index_file), mtime)
    crops = layers.patch_crops(str(index_file), mtime, view.channel, view.info.field)
    if index.skipped:
        st.caption(
            n_("{n} unreadable image was skipped.", "{n} unreadable images were skipped.", len(index.skipped)).format(
                n=len(index.skipped)
            )
        )
    if not crops:
        st.info(_("No patches for this channel."))
    cols = st.columns(3)
    for n, (crop, path, value) in enumerate(crops):
        name = path.rsplit("/", 1)[-1].rsplit(".", 1)[0].replace("_", " ")  # wraps between words
        cols[n % 3].image(crop.resize((128, 128)), caption=f"{name} · {num(value, 2)}", width=128)


def projection_tab(view: LayerView, picked: LoadedImage | None) -> None:
    """The channel's strongest unit run backwards to the pixels: deconvnet and guided backprop."""
    st.caption(
        _(
            "Run the channel's strongest unit backwards to the pixels: the deconvnet (Zeiler & Fergus) and guided "
            "backprop show which input structure it responds to. Grey is zero."
        )
    )
    if picked is None:
        st.info(_(PICK_FIRST))
        return
    if not st.toggle(_("Compute projections"), key="viz_proj_on"):
        return
    deconv, guided, pos, value = layers.projections(
        view.mid, view.info.path, picked.digest, view.size, view.channel, view.loaded, picked.image
    )
    if value <= 0:
        st.warning(
            _("Channel {channel} is silent on this image (max {value}): nothing to project.").format(
                channel=view.channel, value=num(value, 2)
            )
        )
    p1, p2, p3 = st.columns(3)
    p1.image(layers.model_view(picked.image, view.size), caption=_("what the model sees"))
    p2.image(deconv, caption=_("deconvnet · unit {pos} = {value}").format(pos=pos, value=num(value, 2)))
    p3.image(guided, caption=_("guided backprop"))
    st.caption(_("Guided backprop also masks where the forward pass was negative, so it is usually sharper."))


def occlusion_tab(view: LayerView, picked: LoadedImage | None) -> None:
    """A grey square slid over the image: where the class probability drops, and the label it switches to."""
    st.caption(
        _(
            "Slide a grey square over the image and watch the prediction (Zeiler & Fergus, Fig. 7): where the "
            "probability drops, the model was looking."
        )
    )
    if picked is None:
        st.info(_(PICK_FIRST))
        return
    loaded, size = view.loaded, view.size
    o1, o2, o3 = st.columns(3)
    patch = o1.select_slider(_("Square (px)"), [16, 24, 32, 48, 64], value=48, key=keep("viz_occ_patch"))
    stride = o2.select_slider(_("Stride (px)"), [8, 16, 24, 32], value=32, key=keep("viz_occ_stride"))
    names = {-1: _("top class"), **dict(enumerate(loaded.classes))}
    picked_class = o3.selectbox(  # -1: the top class (None would offer a "clear" button)
        _("Class"), list(names), format_func=names.get, key=relabelled("viz_occ_class", names, names.get)
    )
    target = None if picked_class < 0 else picked_class
    asked = [view.mid, picked.digest, size, patch, stride, target]
    if st.button(_("Compute occlusion map"), key="viz_occ_go"):
        st.session_state[OCCLUSION_ASKED] = asked
    if st.session_state.get(OCCLUSION_ASKED) != asked:
        return  # not asked for these settings (the map of settings asked before stays cached)
    result = layers.occlusion_result(*asked, loaded, picked.image)
    prob_fig, label_fig = occlusion_figures(result, loaded.classes)
    m1, m2, m3 = st.columns(3)
    m1.image(
        drop_overlay(layers.model_view(picked.image, size), result),
        caption=drop_caption(result, loaded.classes[result.target], size),
    )
    m2.plotly_chart(prob_fig, key="viz_occ_prob")
    m3.plotly_chart(label_fig, key="viz_occ_label")
    st.caption(
        _(
            "Middle: the class probability with the square centred at each point (white = as without the "
            "square, red = lower, blue = higher). Right: the label the model switches to when that part "
            "is hidden."
        )
    )


def gradcam_tab(view: LayerView, picked: LoadedImage | None) -> None:
    """Grad-CAM at the chosen stage for a class: a coarse map of the evidence."""
    st.caption(
        _(
            "Grad-CAM weighs the chosen stage's channels by how much they push a class up: a coarse map of the "
            "evidence, at the stage's resolution."
        )
    )
    if picked is None:
        st.info(_(PICK_FIRST))
        return
    loaded = view.loaded
    names = {-1: _("predicted class"), **dict(enumerate(loaded.classes))}
    cam_class = st.selectbox(  # -1: the predicted class
        _("Class"), list(names), format_func=names.get, key=relabelled("viz_cam_class", names, names.get)
    )
    class_idx = None if cam_class < 0 else cam_class
    cam, idx = layers.gradcam_overlay(view.mid, view.info.path, picked.digest, view.size, class_idx, loaded,
                                      picked.image)  # fmt: skip
    k1, k2 = st.columns(2)
    k1.image(layers.model_view(picked.image, view.size), caption=_("what the model sees"))
    k2.image(cam, caption=_("Grad-CAM at {stage} for {label}").format(stage=view.stage_name, label=loaded.classes[idx]))


def compare_tab(view: LayerView, picked: LoadedImage | None) -> None:
    """The same image and stage in the random-init, ImageNet and fine-tuned networks: transfer learning, seen."""
    st.caption(
        _(
            "The same image and stage in three networks. Random weights see nothing in particular; ImageNet "
            "weights already see edges, textures and parts; fine-tuning reuses them. That is transfer learning."
        )
    )
    if picked is None:
        st.info(_(PICK_FIRST))
        return
    if not st.toggle(_("Compare the three networks"), key="viz_cmp_on"):
        return
    loaded = view.loaded
    no_run = _("No fine-tuned run chosen: pick one in the sidebar (Switch model) or train one on the Training page.")
    nets = [
        ("random", _("random init"), *layers.imagenet_or_message(loaded.arch, pretrained=False)),
        ("imagenet", _("ImageNet-pretrained"), *layers.imagenet_or_message(loaded.arch)),
        ("run", _("active run"), loaded if loaded.kind == "run" else None, no_run),
    ]
    for col, (kind, name, net, why) in zip(st.columns(3), nets, strict=True):
        with col:
            st.markdown(f"**{name}**")
            if net is None:
                st.info(why)
                continue
            act, _probs = layers.feature_maps(layers.model_id(net), view.info.path, picked.digest, view.size, net,
                                              picked.image)  # fmt: skip
            st.plotly_chart(feature_grid_figure(act, channel_order(act)[:16], ncols=4, width_px=300),
                            key=f"viz_cmp_{kind}")  # fmt: skip
            shown_n = min(16, len(act))
            st.caption(
                n_(
                    "{model}: strongest {n} channel of {stage}",
                    "{model}: strongest {n} channels of {stage}",
                    shown_n,
                ).format(model=net.shown_label(), n=shown_n, stage=view.stage_name)
            )
