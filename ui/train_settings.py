"""The Training page's settings, one `*_ui()` per section: they return the lesson's settings (core.train.lesson).

Every widget's value is kept with the tab (ui.tab_store.keep) under the keys ui.lesson.TRAINING_KEYS reads,
so the Lesson page and its notebook follow what this tab chose.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import streamlit as st

from core.data.datasets import DatasetScan
from core.i18n import N_, _, sentences
from core.nets import models, schedules
from core.train import learners, training
from core.train.lesson import WORKSHOP, LessonSettings, default_views
from ui.tab_store import keep, relabelled

PRETRAINED, RANDOM_INIT = N_("ImageNet-pretrained"), N_("random init (no pretraining)")  # kept values; shown translated
INITS = [PRETRAINED, RANDOM_INIT]
SIZES = [32, 48, 64, 96, 128, 160, 224, 299]
BATCH_SIZES = [4, 8, 16, 32, 64]


@dataclass(frozen=True)
class ModelChoice:
    """Section 1's answer: the network, its initial weights and the data pipeline."""

    arch: str
    pretrained: bool
    img_size: int
    bs: int
    seed: int
    augment: bool


def model_and_data_ui() -> ModelChoice:
    """Architecture, initial weights, image size, batch size, seed, augmentation; warns about weights and random init."""
    c1, c2, c3, c4, c5 = st.columns([2, 1.2, 1, 1, 0.8])  # the first holds "mobilenet_v2 (offline ImageNet weights)"
    names = models.arch_names()
    arch = c1.selectbox(_("Architecture"), names, index=names.index(WORKSHOP.arch), format_func=models.arch_label,
                        key=relabelled(keep("train_arch", options=names), names, models.arch_label))  # fmt: skip
    init = c2.radio(
        _("Initial weights"),
        INITS,
        format_func=_,
        key=relabelled(keep("train_init"), INITS, _),
        help=_(
            "Random init is an explicit choice, never a silent fallback: the frozen body then holds random features."
        ),
    )
    img_size = c3.select_slider(_("Image size (px)"), SIZES, value=WORKSHOP.img_size, key=keep("train_size"))
    bs = c4.select_slider(_("Batch size (bs)"), BATCH_SIZES, value=WORKSHOP.bs, key=keep("train_bs"))
    seed = c5.number_input(_("Seed"), 0, 10_000, WORKSHOP.seed, key=keep("train_seed"))
    augment = st.checkbox(
        _("Augment training batches (fastai `aug_transforms`)"), value=WORKSHOP.augment, key=keep("train_augment")
    )
    pretrained = init == PRETRAINED
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
    return ModelChoice(arch, pretrained, int(img_size), int(bs), int(seed), augment)


def stage1_settings_ui(model: ModelChoice) -> LessonSettings:
    """Stage 1's epochs, lr_max and the Fast path (cached body features, views per image); the lesson's settings."""
    c1, c2, c3, c4 = st.columns(4)
    epochs1 = c1.number_input(_("Epochs"), 1, 50, WORKSHOP.epochs1, key=keep("train_epochs1"))
    lr1 = c2.number_input("lr_max", 1e-6, 1.0, WORKSHOP.lr1, format=schedules.LR_WIDGET_FORMAT, key=keep("train_lr1"))
    fast = c3.toggle(
        _("Fast: cached body features"),
        value=WORKSHOP.fast,
        key=keep("train_fast"),
        help=_("The frozen body's output never changes, so extract it once and train only the head on it."),
    )
    views = c4.number_input(_("Augmented views per image"), 1, 8, default_views(model.augment), key=keep("train_views"),
                            disabled=not fast)  # fmt: skip
    if fast:
        st.caption(sentences(_(training.BN_NOTE), _("`bench/train_speed.py` measures both paths through stage 2.")))
    return LessonSettings(arch=model.arch, img_size=model.img_size, bs=model.bs, augment=model.augment,
                          epochs1=int(epochs1), lr1=float(lr1), epochs2=WORKSHOP.epochs2, fast=fast, views=int(views),
                          seed=model.seed, pretrained=model.pretrained)  # fmt: skip


def schedule_ui(settings: LessonSettings, scan: DatasetScan) -> None:
    """Stage 1's one-cycle schedule, plotted before anything trains."""
    n_iter = learners.n_train_batches(scan, settings.bs)
    st.plotly_chart(
        schedules.schedule_figure(
            schedules.one_cycle_schedule(settings.epochs1, n_iter, settings.lr1),
            schedules.schedule_title(settings.epochs1, n_iter, settings.lr1),
        ),
        key="train_sched1",
    )


def stage2_settings_ui(settings: LessonSettings) -> LessonSettings:
    """Stage 2's epochs and slice(lo, hi), with the learning rate each layer group gets; the settings with them."""
    c1, c2, c3 = st.columns(3)
    epochs2 = c1.number_input(_("Epochs"), 1, 50, WORKSHOP.epochs2, key=keep("train_epochs2"))
    lo = c2.number_input(_("slice lo (first layer group)"), 1e-8, 1.0, WORKSHOP.lr_lo,
                         format=schedules.LR_WIDGET_FORMAT, key=keep("train_lo"))  # fmt: skip
    hi = c3.number_input(
        _("slice hi (head)"), 1e-8, 1.0, WORKSHOP.lr_hi, format=schedules.LR_WIDGET_FORMAT, key=keep("train_hi")
    )
    groups = learners.n_groups(settings.arch)
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
    return replace(settings, epochs2=int(epochs2), lr_lo=float(lo), lr_hi=float(hi), mistake_epochs=int(epochs2))
