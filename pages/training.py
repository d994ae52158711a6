"""Training: lr_find, fit_one_cycle with the body frozen, then unfrozen with discriminative LRs."""

from dataclasses import replace

import streamlit as st

from core import curves, inference, learners, models, runs, schedules, training, training_lock
from core.datasets import training_refusal
from core.i18n import N_, _, listed, n_, num, pct, sentences
from core.lesson import WORKSHOP, LessonSettings, RunRole, default_views, find_runs
from ui.auth import class_mode
from ui.frame import ensure_app_frame
from ui.lesson import notebook_download_ui, tab_settings
from ui.lr_finder import lr_finder_ui
from ui.requests import my_request_ui
from ui.runs import TRAIN_LAST, activate_run, list_runs_ui, run_label, run_record, runs_of_dataset, runs_table
from ui.state import ACTIVE_RUN, runs_dir, scan_active
from ui.tab_store import keep, relabelled, stop_page
from ui.training import BUSY_HELP, TRAIN_OVERLAY, TRAIN_RUNNING, other_training_ui, outcome_ui, train_ui

PRETRAINED, RANDOM_INIT = N_("ImageNet-pretrained"), N_("random init (no pretraining)")  # kept values; shown translated
INITS = [PRETRAINED, RANDOM_INIT]

ensure_app_frame()
st.title(_("🏋️ Training: fine-tune a pretrained network"))
st.caption(
    _(
        "Lesson 1: fine-tune an ImageNet-pretrained CNN. `lr_find` → `fit_one_cycle` with the body frozen → "
        "`unfreeze()` and `fit_one_cycle` again with `slice(lo, hi)`. Every run is stored: asking for a config "
        "that was already trained opens it instantly."
    )
)

if class_mode():
    my_request_ui()  # a student: the Train buttons ask the teacher; where the request stands

scan = scan_active()
if scan is None or scan.n_images == 0:
    st.info(_("Choose a dataset on the **Data** page first."))
    stop_page()
if len(scan.classes) < 2:
    st.error(
        _(
            "Training needs at least two classes; this dataset has {classes} ({names}). Check its labelling on "
            "the **Data** page: a zip with one wrapping folder, or a regex that captures the same text for every "
            "file, gives one class."
        ).format(
            classes=n_("{n} class", "{n} classes", len(scan.classes)).format(n=num(len(scan.classes))),
            names=listed(scan.classes),
        )
    )
    stop_page()
refused = training_refusal(scan)  # no validation image, or a class with no training image: with the numbers
if refused is not None:
    st.error(refused.message, icon="⛔")
    st.caption(_("Change the dataset or add photos on the **Data** page: this page opens when it can train."))
    stop_page()

busy = (
    training_lock.training_running(runs_dir()) and not class_mode()
)  # class mode: the worker trains, queueing goes on
if busy and not st.session_state.get(TRAIN_RUNNING):
    other_training_ui()
busy_help = _(BUSY_HELP) if busy else None

# ---- the model and the data pipeline ----------------------------------------------------------
st.header(_("1 · Model and data"))
c1, c2, c3, c4, c5 = st.columns([2, 1.2, 1, 1, 0.8])  # the first holds "mobilenet_v2 (offline ImageNet weights)"
arch = c1.selectbox(
    _("Architecture"),
    models.arch_names(),
    index=models.arch_names().index(WORKSHOP.arch),
    format_func=models.arch_label,
    key=relabelled(keep("train_arch", options=models.arch_names()), models.arch_names(), models.arch_label),
)
init = c2.radio(
    _("Initial weights"),
    INITS,
    format_func=_,
    key=relabelled(keep("train_init"), INITS, _),
    help=_("Random init is an explicit choice, never a silent fallback: the frozen body then holds random features."),
)
pretrained = init == PRETRAINED
img_size = c3.select_slider(
    _("Image size (px)"), [32, 48, 64, 96, 128, 160, 224, 299], value=WORKSHOP.img_size, key=keep("train_size")
)
bs = c4.select_slider(_("Batch size (bs)"), [4, 8, 16, 32, 64], value=WORKSHOP.bs, key=keep("train_bs"))
seed = c5.number_input(_("Seed"), 0, 10_000, WORKSHOP.seed, key=keep("train_seed"))
augment = st.checkbox(
    _("Augment training batches (fastai `aug_transforms`)"), value=WORKSHOP.augment, key=keep("train_augment")
)
if pretrained and not models.ARCHS[arch].offline and not models.weights_cached(arch):
    st.warning(
        _(
            "ImageNet weights for {arch} are not on this machine; training will try to download them once. "
            "Offline, use mobilenet_v2 (weights ship offline) or the labelled 'random init' option."
        ).format(arch=arch)
    )
if not pretrained:
    st.warning(
        _("{arch} with **random init**: no ImageNet knowledge. Expect a far higher error rate.").format(arch=arch)
    )

# ---- stage 1 ----------------------------------------------------------------------------------
st.header(_("2 · Stage 1: body frozen"))
c1, c2, c3, c4 = st.columns(4)
epochs1 = c1.number_input(_("Epochs"), 1, 50, WORKSHOP.epochs1, key=keep("train_epochs1"))
lr1 = c2.number_input("lr_max", 1e-6, 1.0, WORKSHOP.lr1, format=schedules.LR_WIDGET_FORMAT, key=keep("train_lr1"))
fast = c3.toggle(
    _("Fast: cached body features"),
    value=WORKSHOP.fast,
    key=keep("train_fast"),
    help=_("The frozen body's output never changes, so extract it once and train only the head on it."),
)
views = c4.number_input(
    _("Augmented views per image"), 1, 8, default_views(augment), key=keep("train_views"), disabled=not fast
)
if fast:
    st.caption(sentences(_(training.BN_NOTE), _("`bench/train_speed.py` measures both paths through stage 2.")))
settings = LessonSettings(arch=arch, img_size=int(img_size), bs=int(bs), augment=augment, epochs1=int(epochs1),
                          lr1=float(lr1), epochs2=WORKSHOP.epochs2, fast=fast, views=int(views), seed=int(seed),
                          pretrained=pretrained)  # fmt: skip
config1 = settings.config(RunRole.FROZEN, scan.fingerprint)

with st.expander(_("LR finder (`learn.lr_find()`)"), expanded=True):
    st.caption(
        _(
            "A mock training that raises the LR exponentially each batch and records the loss. "
            "Pick an LR where the loss is still falling steeply, before it explodes."
        )
    )
    lr_finder_ui(config1, scan, busy, busy_help)

n_iter = learners.n_train_batches(scan, int(bs))
st.plotly_chart(
    schedules.schedule_figure(
        schedules.one_cycle_schedule(int(epochs1), n_iter, float(lr1)),
        schedules.schedule_title(int(epochs1), n_iter, float(lr1)),
    ),
    key="train_sched1",
)


# a full fastai run of these settings (`make prepare`) counts as trained with Fast on, and the other way round
config1, existing1 = runs.find_frozen_run(runs_dir(), config1, views=int(views))
stage1 = config1.stages[0]
outcome_ui(1)
c1, c2 = st.columns(2)
if existing1:
    c1.success(_("Already trained: {run}").format(run=run_label(existing1)))
    if stage1.fast != fast:
        c1.caption(
            _("Trained on cached body features: stage 2 continues from it.")
            if stage1.fast
            else _(
                "Trained the full fastai way (as `make prepare` does), not on cached features: stage 2 continues from it."
            )
        )
    c1.button(_("Open it"), key="train_open1", on_click=activate_run, args=(existing1.run_id,))
    if c2.button(_("Retrain anyway"), key="train_retrain1", disabled=busy, help=busy_help):
        train_ui(config1, scan, retrain=True)
elif c1.button("▶ " + _("Train stage 1 (frozen)"), type="primary", key="train_go1", disabled=busy, help=busy_help):
    train_ui(config1, scan)

shown = st.session_state.get(TRAIN_LAST)
if shown and (runs_dir() / shown).is_dir():
    shown_run = run_record(shown) if (runs_dir() / shown / models.WEIGHTS_FILE).is_file() else None
    record = shown_run.record if shown_run else None  # a broken run.json is a warning (run_record), not a crash
    if record:
        st.subheader(_("Run {run}: {title}").format(run=shown, title=shown_run.title))
        st.plotly_chart(curves.loss_figure(record.epoch_rows()), key="train_run_chart")
        st.dataframe(curves.epochs_table(record.epoch_rows()), hide_index=True)
        st.caption(inference.precision_note(record))
        if (differ := runs.stored_error_differs(shown_run)) is not None:
            st.warning(
                _(
                    "This run was trained by an older Pet Lab that validated in {precision}: its last epoch says "
                    "{shown} error, its stored predictions (Interpretation) {stored}. Retrain it to get one number."
                ).format(precision=record.precision, shown=pct(differ[0], 1), stored=pct(differ[1], 1))
            )

# ---- stage 2 ----------------------------------------------------------------------------------
st.header(_("3 · Stage 2: unfreeze, discriminative learning rates"))
if existing1 is None:
    st.info(_("Train stage 1 with the settings above first: stage 2 continues from that stored run."))
else:
    c1, c2, c3 = st.columns(3)
    epochs2 = c1.number_input(_("Epochs"), 1, 50, WORKSHOP.epochs2, key=keep("train_epochs2"))
    lo = c2.number_input(
        _("slice lo (first layer group)"),
        1e-8,
        1.0,
        WORKSHOP.lr_lo,
        format=schedules.LR_WIDGET_FORMAT,
        key=keep("train_lo"),
    )
    hi = c3.number_input(
        _("slice hi (head)"), 1e-8, 1.0, WORKSHOP.lr_hi, format=schedules.LR_WIDGET_FORMAT, key=keep("train_hi")
    )
    groups = learners.n_groups(arch)
    st.dataframe(
        {
            _("layer group"): [
                _("group {n} (head)").format(n=i + 1) if i == groups - 1 else _("group {n}").format(n=i + 1)
                for i in range(groups)
            ],
            _("lr_max from slice(lo, hi)"): [
                schedules.lr_text(v) for v in schedules.group_lrs(float(lo), float(hi), groups)
            ],
        },
        hide_index=True,
    )
    settings = replace(settings, epochs2=int(epochs2), lr_lo=float(lo), lr_hi=float(hi), mistake_epochs=int(epochs2))
    config2 = replace(config1, stages=(stage1, settings.stage2()))  # stage 1 as stored (Fast or the full way)
    mistake = replace(config1, stages=(stage1, settings.mistake()))
    outcome_ui(2)
    c1, c2 = st.columns(2)
    done2 = runs.find_run(runs_dir(), config2)
    if done2:
        c1.success(_("Already trained: {run}").format(run=run_label(done2)))
        c1.button(_("Open it"), key="train_open2", on_click=activate_run, args=(done2.run_id,))
    elif c1.button("▶ " + _("Unfreeze and train stage 2"), type="primary", key="train_go2", disabled=busy,
                   help=busy_help):  # fmt: skip
        train_ui(config2, scan)
    if c2.button(_("The lesson's mistake: unfreeze at the default LR (1e-3 for every group)"), key="train_mistake",
                 disabled=busy, help=busy_help):  # fmt: skip
        train_ui(mistake, scan)
    st.caption(_("Early layers learn general edges and textures: they need a much smaller LR than the new head."))

settings = tab_settings()  # this tab's values, stage 2's included when stage 1 is not trained yet
notebook_download_ui(settings, scan, find_runs(settings, scan.fingerprint, runs_dir()), key="train_notebook")

# ---- runs list ---------------------------------------------------------------------------------
st.header(_("4 · Runs"))
every = st.toggle(_("Runs of every dataset"), value=False, key=keep("train_all_runs"),
                  help=_("Off: only the runs trained on the active dataset (and the active run)."))  # fmt: skip
found = list_runs_ui()
if not every:
    found = runs_of_dataset(found, scan.fingerprint, keep=st.session_state.get(ACTIVE_RUN))
if not found:
    st.caption(_("No runs on this dataset yet.") if not every else _("No runs yet."))
else:
    # st.table: a long (translated) title wraps in its cell, the last column is never pushed out of view
    st.table(runs_table(found, st.session_state.get(ACTIVE_RUN)), hide_index=True)
    labels = {r.run_id: run_label(r) for r in found}
    pick = st.selectbox(_("Make active"), list(labels), format_func=labels.get,
                        key=relabelled("train_pick", labels, labels.get))  # fmt: skip
    st.button(_("Use as the active model"), key="train_activate", on_click=lambda: activate_run(pick))
    if TRAIN_OVERLAY in st.session_state:  # runs of another dataset (or deleted) leave the selection
        st.session_state[TRAIN_OVERLAY] = [i for i in st.session_state[TRAIN_OVERLAY] if i in labels]
    overlay = st.multiselect(_("Overlay runs"), [r.run_id for r in found], default=[r.run_id for r in found[:3]],
                             format_func=labels.get, key=relabelled(TRAIN_OVERLAY, labels, labels.get))  # fmt: skip
    metric = st.radio(_("Metric"), ["valid_loss", "error_rate", "train_loss"], horizontal=True,
                      key=keep("train_metric"))  # fmt: skip
    by_id = {r.run_id: r for r in found}
    st.plotly_chart(
        curves.runs_figure([(labels[i], by_id[i].record.epoch_rows()) for i in overlay], metric),
        key="train_overlay_chart",
    )
