"""Training: lr_find, fit_one_cycle with the body frozen, then unfrozen with discriminative LRs."""

from dataclasses import replace

import streamlit as st

from core import inference, models, runs, schedules, training
from core.runs import RunConfig, StageConfig
from ui.frame import ensure_app_frame
from ui.runs import LiveTraining, features_dir, list_runs_ui, other_training_ui, run_label, run_record
from ui.state import ACTIVE_RUN, keep, runs_dir, scan_active

ensure_app_frame()
st.title("🏋️ Training: fine-tune a pretrained network")
st.caption(
    "Lesson 1: fine-tune an ImageNet-pretrained CNN. `lr_find` → `fit_one_cycle` with the body frozen → "
    "`unfreeze()` and `fit_one_cycle` again with `slice(lo, hi)`. Every run is stored: asking for a config "
    "that was already trained opens it instantly."
)

scan = scan_active()
if scan is None or scan.n_images == 0:
    st.info("Choose a dataset on the **Data** page first.")
    st.stop()
if scan.items["is_valid"].all() or not scan.items["is_valid"].any():
    st.error("This dataset has no training/validation split (too few images). Add images on the Data page.")
    st.stop()

busy = runs.training_running(runs_dir())
if busy and not st.session_state.get("train_running_here"):
    other_training_ui()

# ---- the model and the data pipeline ----------------------------------------------------------
st.header("1 · Model and data")
c1, c2, c3, c4, c5 = st.columns(5)
arch = c1.selectbox(
    "Architecture",
    models.arch_names(),
    index=models.arch_names().index("mobilenet_v2"),
    format_func=lambda a: f"{a} ({models.ARCHS[a].note})" if models.ARCHS[a].note else a,
    key=keep("train_arch", options=models.arch_names()),
)
init = c2.radio(
    "Initial weights",
    ["ImageNet-pretrained", "random init (no pretraining)"],
    key=keep("train_init"),
    help="Random init is an explicit choice, never a silent fallback: the frozen body then holds random features.",
)
pretrained = init == "ImageNet-pretrained"
img_size = c3.select_slider("Image size (px)", [32, 48, 64, 96, 128, 160, 224, 299], value=64, key=keep("train_size"))
bs = c4.select_slider("Batch size (bs)", [4, 8, 16, 32, 64], value=16, key=keep("train_bs"))
seed = c5.number_input("Seed", 0, 10_000, 42, key=keep("train_seed"))
augment = st.checkbox("Augment training batches (fastai `aug_transforms`)", value=False, key=keep("train_augment"))
if pretrained and not models.ARCHS[arch].offline and not models.weights_cached(arch):
    st.warning(
        f"ImageNet weights for {arch} are not on this machine; training will try to download them once. "
        "Offline, use mobilenet_v2 (weights ship offline) or the labelled 'random init' option."
    )
if not pretrained:
    st.warning(f"{arch} with **random init**: no ImageNet knowledge. Expect a far higher error rate.")

# ---- stage 1 ----------------------------------------------------------------------------------
st.header("2 · Stage 1: body frozen")
c1, c2, c3, c4 = st.columns(4)
epochs1 = c1.number_input("Epochs", 1, 50, 2, key=keep("train_epochs1"))
lr1 = c2.number_input("lr_max", 1e-6, 1.0, 3e-3, format="%.1e", key=keep("train_lr1"))
fast = c3.toggle(
    "Fast: cached body features",
    value=True,
    key=keep("train_fast"),
    help="The frozen body's output never changes, so extract it once and train only the head on it.",
)
views = c4.number_input(
    "Augmented views per image", 1, 8, 2 if augment else 1, key=keep("train_views"), disabled=not fast
)
if fast:
    st.caption(
        "⚠️ " + training.BN_NOTE + " This is the one difference from fastai's frozen training; "
        "`bench/train_speed.py` measures its effect on error rate."
    )
stage1 = StageConfig(epochs=int(epochs1), lr_max=float(lr1), fast=fast, views=int(views) if fast else 1)
config1 = RunConfig(
    dataset=scan.fingerprint,
    arch=arch,
    pretrained=pretrained,
    img_size=int(img_size),
    augment=augment,
    bs=int(bs),
    seed=int(seed),
    stages=(stage1,),
)

with st.expander("LR finder (`learn.lr_find()`)", expanded=True):
    st.caption(
        "A mock training that raises the LR exponentially each batch and records the loss. "
        "Pick an LR where the loss is still falling steeply, before it explodes."
    )
    if st.button("Run the LR finder", key="train_lrfind_btn", disabled=busy):
        bar = st.progress(0.0, text="LR finder: extracting features / preparing…")
        try:
            result = training.find_lr(
                config1,
                scan,
                runs_dir(),
                features_dir(),
                on_event=lambda e: e["kind"] == "extract" and bar.progress(e["i"] / max(1, e["n"]), text=e["what"]),
            )
            history = st.session_state.setdefault("train_lrfind_history", [])
            history.append(result.as_dict())
            del history[:-4]
        except (runs.ConfigError, models.WeightsUnavailable) as err:
            st.error(str(err))
        bar.empty()
    history = st.session_state.get("train_lrfind_history", [])
    if history:
        st.plotly_chart(training.lr_finder_figure(history), key="train_lrfind_chart")
        last = history[-1]
        for name, lr in last["suggestions"].items():
            st.markdown(f"- **{name}** `{lr:.1e}`: {training.SUGGESTION_TEXT[name]}")
        if "valley" in last["suggestions"] and st.button(
            f"Use valley ({last['suggestions']['valley']:.1e}) as lr_max", key="train_use_valley"
        ):
            st.session_state["train_lr1"] = float(last["suggestions"]["valley"])
            st.rerun()
        if len(history) > 1:
            st.caption("Earlier LR-finder curves are drawn faded, so you can see the curve change between runs.")

n_iter = training.n_train_batches(scan, int(bs))
st.plotly_chart(
    schedules.schedule_figure(
        schedules.one_cycle_schedule(int(epochs1), n_iter, float(lr1)),
        f"fit_one_cycle({int(epochs1)}, lr_max={float(lr1):.1e}): {n_iter} batches per epoch",
    ),
    key="train_sched1",
)


def train(config: RunConfig, retrain: bool = False) -> None:
    """Train (or open) a run with a live display; errors become messages, a Stop leaves nothing saved."""
    st.session_state["train_running_here"] = True
    st.button("⏹ Stop training", key=f"train_stop_{config.run_id}", type="secondary")
    live = LiveTraining(len(config.stages))
    lr_record = (st.session_state.get("train_lrfind_history") or [None])[-1]
    try:
        result = training.train_run(
            config, scan, runs_dir(), features_dir(), on_event=live, lr_finder=lr_record, retrain=retrain
        )
    except runs.TrainingBusy as err:
        st.warning(f"{err} Wait for it to finish (its progress is shown above).")
        return
    except runs.TrainingStopped as err:
        st.warning(str(err))
        return
    except (runs.ConfigError, models.WeightsUnavailable) as err:
        st.error(str(err))
        return
    finally:
        st.session_state["train_running_here"] = False
    live.bar.progress(1.0, text="Done.")
    st.session_state[ACTIVE_RUN] = result.run.run_id
    st.session_state["train_last_run"] = result.run.run_id
    st.success(
        f"{'Opened the stored' if result.reused else 'Trained and stored'} run {result.run.run_id} (now active)."
    )


existing1 = runs.find_run(runs_dir(), config1)
c1, c2 = st.columns(2)
if existing1:
    c1.success(f"Already trained: {run_label(existing1)}")
    if c1.button("Open it", key="train_open1"):
        st.session_state[ACTIVE_RUN] = existing1.run_id
        st.session_state["train_last_run"] = existing1.run_id
    if c2.button("Retrain anyway", key="train_retrain1", disabled=busy):
        train(config1, retrain=True)
elif c1.button("▶ Train stage 1 (frozen)", type="primary", key="train_go1", disabled=busy):
    train(config1)

shown = st.session_state.get("train_last_run")
if shown and (runs_dir() / shown).is_dir():
    shown_run = run_record(shown) if (runs_dir() / shown / models.WEIGHTS_FILE).is_file() else None
    record = shown_run.record if shown_run else None  # a broken run.json is a warning (run_record), not a crash
    if record:
        st.subheader(f"Run {shown}: {record.title}")
        st.plotly_chart(training.loss_figure(record.epoch_rows()), key="train_run_chart")
        st.dataframe(training.epochs_table(record.epoch_rows()), hide_index=True)
        st.caption(inference.precision_note(record))

# ---- stage 2 ----------------------------------------------------------------------------------
st.header("3 · Stage 2: unfreeze, discriminative learning rates")
if existing1 is None:
    st.info("Train stage 1 with the settings above first: stage 2 continues from that stored run.")
else:
    c1, c2, c3 = st.columns(3)
    epochs2 = c1.number_input("Epochs", 1, 50, 1, key=keep("train_epochs2"))
    lo = c2.number_input("slice lo (first layer group)", 1e-8, 1.0, 1e-6, format="%.1e", key=keep("train_lo"))
    hi = c3.number_input("slice hi (head)", 1e-8, 1.0, 1e-4, format="%.1e", key=keep("train_hi"))
    groups = training.n_groups(arch)
    st.dataframe(
        {
            "layer group": [f"group {i + 1}" + (" (head)" if i == groups - 1 else "") for i in range(groups)],
            "lr_max from slice(lo, hi)": [f"{v:.1e}" for v in schedules.group_lrs(float(lo), float(hi), groups)],
        },
        hide_index=True,
    )
    stage2 = StageConfig(epochs=int(epochs2), lr_max=float(hi), lr_min=float(lo), unfreeze=True)
    config2 = replace(config1, stages=(stage1, stage2))
    mistake = RunConfig(
        **{**config1.__dict__, "stages": (stage1, StageConfig(epochs=int(epochs2), lr_max=1e-3, unfreeze=True))}
    )
    c1, c2 = st.columns(2)
    done2 = runs.find_run(runs_dir(), config2)
    if done2:
        c1.success(f"Already trained: {run_label(done2)}")
        if c1.button("Open it", key="train_open2"):
            st.session_state[ACTIVE_RUN] = done2.run_id
            st.session_state["train_last_run"] = done2.run_id
    elif c1.button("▶ Unfreeze and train stage 2", type="primary", key="train_go2", disabled=busy):
        train(config2)
    if c2.button(
        "The lesson's mistake: unfreeze at the default LR (1e-3 for every group)", key="train_mistake", disabled=busy
    ):
        train(mistake)
    st.caption("Early layers learn general edges and textures: they need a much smaller LR than the new head.")

# ---- runs list ---------------------------------------------------------------------------------
st.header("4 · Runs")
found = list_runs_ui()
if not found:
    st.caption("No runs yet.")
else:
    st.dataframe(
        [
            {
                "run": r.run_id,
                "title": r.title,
                "error_rate": r.error_rate,
                "epochs": len(r.record.epochs),
                "train time (s)": round(sum(r.record.timings.values()), 1),
                "active": "✓" if st.session_state.get(ACTIVE_RUN) == r.run_id else "",
            }
            for r in found
        ],
        hide_index=True,
    )
    labels = {r.run_id: run_label(r) for r in found}
    pick = st.selectbox("Make active", [r.run_id for r in found], format_func=labels.get, key="train_pick")
    if st.button("Use as the active model", key="train_activate"):
        st.session_state[ACTIVE_RUN] = pick
        st.rerun()
    overlay = st.multiselect("Overlay runs", [r.run_id for r in found], default=[r.run_id for r in found[:3]],
                             format_func=labels.get, key="train_overlay")  # fmt: skip
    metric = st.radio("Metric", ["valid_loss", "error_rate", "train_loss"], horizontal=True, key=keep("train_metric"))
    by_id = {r.run_id: r for r in found}
    st.plotly_chart(
        training.runs_figure([(labels[i], by_id[i].record.epoch_rows()) for i in overlay], metric),
        key="train_overlay_chart",
    )
