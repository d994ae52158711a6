"""Layers: what each stage of the CNN sees (Zeiler & Fergus 2014, on your own network and photos)."""

import plotly.express as px
import streamlit as st

from core.activations import channel_order, channel_overlay_heat, feature_grid_figure
from core.filters import filter_change, filter_grid
from core.gradcam import overlay
from core.i18n import _, listed, n_, num, pct
from core.occlusion import drop_caption, drop_overlay, occlusion_figures
from ui import layers
from ui.auth import class_mode
from ui.frame import ensure_app_frame
from ui.pickers import image_picker_ui
from ui.state import active_model, scan_active
from ui.tab_store import keep, relabelled

ensure_app_frame()
st.title(_("🔬 Layers: what each layer sees"))
st.caption(
    _(
        "Early layers react to edges and colours, later ones combine them into textures, parts and whole pets "
        "(Zeiler & Fergus, 2014). That is why fine-tuning can keep the early layers almost as they are."
    )
)

loaded = active_model()
mid = layers.model_id(loaded)
size = loaded.img_size
st.markdown(_("**Model:** {model} · input {size}×{size} px").format(model=loaded.shown_label(), size=size))

infos = layers.stage_infos(loaded.arch, size)
with st.expander(_("Stages: output shapes and receptive fields"), expanded=False):
    st.dataframe(layers.stage_table(infos), hide_index=True, width="stretch")
    st.caption(
        _(
            "The receptive field is the square of input pixels one unit of a stage can see; it grows with depth, "
            "so later units can respond to whole ears or faces."
        )
    )
labels = [i.label for i in infos]
c1, c2 = st.columns([2, 1])
stage_label = c1.selectbox(
    _("Stage"),
    labels,
    index=min(2, len(labels) - 1),
    format_func=_,  # kept in English (the tab's store), shown translated
    key=relabelled(keep("viz_stage", options=labels), labels, _),
)
stage_name = _(stage_label)
info = infos[labels.index(stage_label)]
n_channels = info.shape[1]
channel_key = keep("viz_channel", valid=lambda c: 0 <= c < n_channels)
channel = int(
    c2.number_input(_("Channel (0–{last})").format(last=n_channels - 1), 0, n_channels - 1, 0, key=channel_key)
)
st.caption(
    _(
        "`{stage}` outputs `{shape}`; each unit sees {field}×{field} px of the {size}×{size} input, "
        "units are {jump} px apart."
    ).format(
        stage=stage_name,
        shape=f"(B, {', '.join(map(str, info.shape[1:]))})",
        field=info.field.size,
        size=size,
        jump=int(info.field.jump),
    )
)

picked = image_picker_ui("viz")
tabs = st.tabs(
    [
        _("Feature maps"),
        _("Filters"),
        _("Top patches"),
        _("Projection"),
        _("Occlusion"),
        "Grad-CAM",
        _("Compare networks"),
    ]
)

# ---- feature maps ---------------------------------------------------------------------------------
with tabs[0]:
    if picked is None:
        st.info(_("Pick an image above to see its feature maps."))
    else:
        act, probs = layers.feature_maps(mid, info.path, picked.digest, size, loaded, picked.image)
        top = int(probs.argmax())
        st.markdown(_("Prediction: **{label}** ({p})").format(label=loaded.classes[top], p=pct(probs[top])))
        order = channel_order(act)
        counts = layers.channel_counts(len(order))  # only as many as the stage has (24 for features.3)
        if len(counts) > 1:
            n_show = st.select_slider(
                _("Channels shown"), counts, value=min(32, counts[-1]), key=keep("viz_nshow", options=counts)
            )
        else:
            n_show = counts[0]
        shown = order[:n_show]
        g1, g2 = st.columns([3, 2])
        with g1:
            title = n_("{stage}: strongest {n} channel", "{stage}: strongest {n} channels", len(shown))
            fig = feature_grid_figure(act, shown, ncols=8, title=title.format(stage=stage_name, n=len(shown)))
            st.plotly_chart(fig, key="viz_grid")
            st.caption(
                _(
                    "Each tile is one channel's map over the image, brightest = strongest, sorted by mean "
                    "activation. Strongest here: {channels} — type one into *Channel* to enlarge it."
                ).format(channels=listed(shown[:8]))
            )
        with g2:
            heat = channel_overlay_heat(act, channel)
            st.image(
                overlay(layers.model_view(picked.image, size), heat, alpha=0.55),
                caption=_("channel {channel} over the image (rank {rank} of {n})").format(
                    channel=channel, rank=int((order == channel).nonzero()[0][0]) + 1, n=len(order)
                ),
            )
            big = px.imshow(act[channel], color_continuous_scale="Viridis", title=_("channel {n}").format(n=channel))
            big.update_traces(hovertemplate="x %{x}, y %{y}: %{z:.2f}<extra></extra>")
            big.update_layout(margin=dict(l=0, r=0, t=30, b=0), height=300)
            st.plotly_chart(big, key="viz_channel_map")
            st.caption(_("Where this channel fires: one detector slid over every position of the image."))

# ---- filters --------------------------------------------------------------------------------------
with tabs[1]:
    pretrained, why = layers.imagenet_or_message(loaded.arch)
    if pretrained is None:
        st.warning(why)
    else:
        imagenet_filters = layers.first_filters(layers.model_id(pretrained), pretrained)
        f1, f2 = st.columns(2)
        f1.image(
            filter_grid(imagenet_filters),
            caption=_("ImageNet-pretrained {arch}: first conv").format(arch=loaded.arch),
        )
        f1.caption(
            _("Learnt on ImageNet: colour blobs and oriented edges, the alphabet every later layer is built from.")
        )
        if loaded.kind == "run":
            run_filters = layers.first_filters(mid, loaded)
            change = filter_change(imagenet_filters, run_filters)
            f2.image(
                filter_grid(run_filters),
                caption=_("{model}: first conv after fine-tuning").format(model=loaded.shown_label()),
            )
            value, note = layers.filter_change_note(change)
            f2.metric(_("median change per filter"), value)
            f2.caption(note)
        else:
            random_init, why_random = layers.imagenet_or_message(loaded.arch, pretrained=False)
            if random_init is not None:
                f2.image(
                    filter_grid(layers.first_filters(layers.model_id(random_init), random_init)),
                    caption=_("{arch}, random init (seed {seed})").format(arch=loaded.arch, seed=layers.RANDOM_SEED),
                )
            f2.caption(
                _("Untrained filters are noise. Choose a fine-tuned run (sidebar, Switch model) to compare it here.")
            )

# ---- top patches ----------------------------------------------------------------------------------
with tabs[2]:
    st.caption(
        _(
            "For the chosen channel, the dataset images that excite it most, cropped to the unit's receptive "
            "field (Zeiler & Fergus, Fig. 2). Early stages pick colours and edges; late ones, pet parts."
        )
    )
    scan = scan_active()
    if scan is None or scan.n_images == 0:
        st.info(_("Top patches need a dataset: choose one on the Data page."))
    else:
        default_n = min(scan.n_images, layers.SCAN_IMAGES)
        limit = st.number_input(
            _("Images to scan"), min(9, scan.n_images), scan.n_images, default_n, step=50, key="viz_patch_n"
        )
        paths = layers.sample_paths(scan.items["path"].astype(str).tolist(), int(limit))
        fingerprint = f"{scan.fingerprint}-n{int(limit)}"
        index_file = layers.patch_index_path(mid, fingerprint, info.path, size)
        if not index_file.is_file():
            st.write(
                n_(
                    "No index yet for `{stage}` of this model over {n} image.",
                    "No index yet for `{stage}` of this model over {n} images.",
                    len(paths),
                ).format(stage=stage_name, n=len(paths))
            )
            build_label = n_(
                "Build the index (one pass over {n} image)", "Build the index (one pass over {n} images)", len(paths)
            )
            if class_mode():  # a job for the worker, shared by every tab; a laptop builds it here
                request = layers.patch_index_request(loaded, mid, fingerprint, info.path, size, paths)
                layers.patch_index_job_ui(request, scan.spec)
            elif st.button(build_label.format(n=len(paths)), key="viz_patch_build"):
                bar = st.progress(0.0, text=_("Indexing…"))
                try:
                    layers.build_patch_index(
                        loaded, mid, fingerprint, info.path, size, paths,
                        lambda done, total: bar.progress(
                            done / total, text=_("Indexing… {done}/{total} images").format(done=done, total=total)
                        ),
                    )  # fmt: skip
                except ValueError as err:
                    st.error(str(err))
                else:
                    st.rerun()  # show the index from disk
                bar.empty()
        else:
            mtime = index_file.stat().st_mtime
            index = layers.load_patch_index(str(index_file), mtime)
            crops = layers.patch_crops(str(index_file), mtime, channel, info.field)
            if index.skipped:
                st.caption(
                    n_(
                        "{n} unreadable image was skipped.", "{n} unreadable images were skipped.", len(index.skipped)
                    ).format(n=len(index.skipped))
                )
            if not crops:
                st.info(_("No patches for this channel."))
            cols = st.columns(3)
            for n, (crop, path, value) in enumerate(crops):
                name = path.rsplit("/", 1)[-1].rsplit(".", 1)[0].replace("_", " ")  # wraps between words
                cols[n % 3].image(crop.resize((128, 128)), caption=f"{name} · {num(value, 2)}", width=128)

# ---- projection -----------------------------------------------------------------------------------
with tabs[3]:
    st.caption(
        _(
            "Run the channel's strongest unit backwards to the pixels: the deconvnet (Zeiler & Fergus) and guided "
            "backprop show which input structure it responds to. Grey is zero."
        )
    )
    if picked is None:
        st.info(_("Pick an image above first."))
    elif st.toggle(_("Compute projections"), key="viz_proj_on"):
        deconv, guided, pos, value = layers.projections(
            mid, info.path, picked.digest, size, channel, loaded, picked.image
        )
        if value <= 0:
            st.warning(
                _("Channel {channel} is silent on this image (max {value}): nothing to project.").format(
                    channel=channel, value=num(value, 2)
                )
            )
        p1, p2, p3 = st.columns(3)
        p1.image(layers.model_view(picked.image, size), caption=_("what the model sees"))
        p2.image(deconv, caption=_("deconvnet · unit {pos} = {value}").format(pos=pos, value=num(value, 2)))
        p3.image(guided, caption=_("guided backprop"))
        st.caption(_("Guided backprop also masks where the forward pass was negative, so it is usually sharper."))

# ---- occlusion ------------------------------------------------------------------------------------
with tabs[4]:
    st.caption(
        _(
            "Slide a grey square over the image and watch the prediction (Zeiler & Fergus, Fig. 7): where the "
            "probability drops, the model was looking."
        )
    )
    if picked is None:
        st.info(_("Pick an image above first."))
    else:
        o1, o2, o3 = st.columns(3)
        patch = o1.select_slider(_("Square (px)"), [16, 24, 32, 48, 64], value=48, key=keep("viz_occ_patch"))
        stride = o2.select_slider(_("Stride (px)"), [8, 16, 24, 32], value=32, key=keep("viz_occ_stride"))
        occ_names = {-1: _("top class"), **dict(enumerate(loaded.classes))}
        picked_class = o3.selectbox(  # -1: the top class (None would offer a "clear" button)
            _("Class"),
            list(occ_names),
            format_func=occ_names.get,
            key=relabelled("viz_occ_class", occ_names, occ_names.get),
        )
        target = None if picked_class < 0 else picked_class
        params = (mid, picked.digest, size, patch, stride, target)
        if st.button(_("Compute occlusion map"), key="viz_occ_go"):
            bar = st.progress(0.0, text=_("Occluding…"))
            result = layers.occlusion_result(
                loaded, picked.image, size, patch, stride, target,
                lambda done, total: bar.progress(
                    done / total, text=_("Occluding… {done}/{total} positions").format(done=done, total=total)
                ),
            )  # fmt: skip
            bar.empty()
            st.session_state["viz_occ_result"] = (params, result)
        stored = st.session_state.get("viz_occ_result")
        if stored is not None and stored[0] == params:
            result = stored[1]
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

# ---- Grad-CAM ------------------------------------------------------------------------------------
with tabs[5]:
    st.caption(
        _(
            "Grad-CAM weighs the chosen stage's channels by how much they push a class up: a coarse map of the "
            "evidence, at the stage's resolution."
        )
    )
    if picked is None:
        st.info(_("Pick an image above first."))
    else:
        cam_names = {-1: _("predicted class"), **dict(enumerate(loaded.classes))}
        cam_class = st.selectbox(  # -1: the predicted class
            _("Class"),
            list(cam_names),
            format_func=cam_names.get,
            key=relabelled("viz_cam_class", cam_names, cam_names.get),
        )
        class_idx = None if cam_class < 0 else cam_class
        cam, idx = layers.gradcam_overlay(mid, info.path, picked.digest, size, class_idx, loaded, picked.image)
        k1, k2 = st.columns(2)
        k1.image(layers.model_view(picked.image, size), caption=_("what the model sees"))
        k2.image(cam, caption=_("Grad-CAM at {stage} for {label}").format(stage=stage_name, label=loaded.classes[idx]))

# ---- compare networks ------------------------------------------------------------------------------
with tabs[6]:
    st.caption(
        _(
            "The same image and stage in three networks. Random weights see nothing in particular; ImageNet "
            "weights already see edges, textures and parts; fine-tuning reuses them. That is transfer learning."
        )
    )
    if picked is None:
        st.info(_("Pick an image above first."))
    elif st.toggle(_("Compare the three networks"), key="viz_cmp_on"):
        nets = [
            ("random", _("random init"), *layers.imagenet_or_message(loaded.arch, pretrained=False)),
            ("imagenet", _("ImageNet-pretrained"), *layers.imagenet_or_message(loaded.arch)),
            (
                "run",
                _("active run"),
                loaded if loaded.kind == "run" else None,
                _(
                    "No fine-tuned run chosen: pick one in the sidebar (Switch model) or train one on the "
                    "Training page."
                ),
            ),
        ]
        cols = st.columns(3)
        for col, (kind, name, net, why) in zip(cols, nets, strict=True):
            with col:
                st.markdown(f"**{name}**")
                if net is None:
                    st.info(why)
                    continue
                net_id = layers.model_id(net)
                net_act, _probs = layers.feature_maps(net_id, info.path, picked.digest, size, net, picked.image)
                fig = feature_grid_figure(net_act, channel_order(net_act)[:16], ncols=4, width_px=300)
                st.plotly_chart(fig, key=f"viz_cmp_{kind}")
                shown_n = min(16, len(net_act))
                st.caption(
                    n_(
                        "{model}: strongest {n} channel of {stage}",
                        "{model}: strongest {n} channels of {stage}",
                        shown_n,
                    ).format(model=net.shown_label(), n=shown_n, stage=stage_name)
                )
