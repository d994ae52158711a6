"""The plotted one-cycle schedule is the one fastai's fit_one_cycle actually follows."""

import numpy as np
import pytest
import torch
from fastai.callback.schedule import fit_one_cycle  # noqa: F401 - patches Learner
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.learner import Learner
from fastai.torch_core import params, set_seed
from torch import nn

from core.nets.schedules import group_lrs, one_cycle_lr, one_cycle_mom, one_cycle_schedule


def tiny_learner():
    set_seed(0)
    x = torch.randn(32, 4)
    y = (x[:, 0] > 0).long()
    ds = list(zip(x, y, strict=True))
    dls = DataLoaders(DataLoader(ds, bs=8, shuffle=True, drop_last=True), DataLoader(ds, bs=8))
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.Linear(4, 2))
    learn = Learner(
        dls, model, loss_func=nn.CrossEntropyLoss(), splitter=lambda m: [params(m[0]), params(m[2]), params(m[3])]
    )
    learn.logger = lambda *a: None
    return learn


def test_schedule_matches_fastai_recorder():
    learn = tiny_learner()
    with learn.no_bar():
        learn.fit_one_cycle(3, lr_max=1e-2)
    sched = one_cycle_schedule(n_epoch=3, n_iter=4, lr_max=1e-2)
    assert len(sched) == len(learn.recorder.lrs) == 12
    np.testing.assert_allclose(sched["lr"], learn.recorder.lrs, rtol=1e-6)
    np.testing.assert_allclose(sched["mom"], learn.recorder.hps["mom"], rtol=1e-6)


def test_shape_of_the_cycle():
    assert one_cycle_lr(0.0, 1e-3) == pytest.approx(1e-3 / 25)
    assert one_cycle_lr(0.25, 1e-3) == pytest.approx(1e-3)
    assert one_cycle_lr(1.0, 1e-3) == pytest.approx(1e-3 / 1e5)
    assert one_cycle_mom(0.0) == pytest.approx(0.95) and one_cycle_mom(0.25) == pytest.approx(0.85)


def test_group_lrs_match_fastai_slice():
    learn = tiny_learner()
    learn.create_opt()
    learn.opt.set_hyper("lr", slice(1e-6, 1e-4))
    assert group_lrs(1e-6, 1e-4, 3) == pytest.approx([h["lr"] for h in learn.opt.hypers])
    assert group_lrs(None, 1e-3, 3) == [1e-3] * 3


def test_schedule_figure_ticks_are_readable():
    from core.nets.schedules import schedule_figure

    layout = schedule_figure(one_cycle_schedule(n_epoch=1, n_iter=1, lr_max=1e-3)).layout
    assert layout.yaxis2.tickformat == ".2f" and layout.yaxis2.dtick == 0.05  # 0.85, 0.90, 0.95: never 0.8098
    assert layout.xaxis.tickformat == ".1f"


def test_schedule_title_counts_batches_in_english():
    from core.nets.schedules import schedule_title

    assert schedule_title(2, 1, 3e-3) == "fit_one_cycle(2, lr_max=3e-03): 1 batch per epoch"
    assert schedule_title(1, 15, 1e-3).endswith("15 batches per epoch")
