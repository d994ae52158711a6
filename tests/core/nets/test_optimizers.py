"""fused_adam makes fastai's Adam update (weight decay, moving averages, debiasing, do_wd) in one kernel."""

import copy

import torch
from torch import nn

from core.nets.optimizers import fused_adam


def model() -> nn.Sequential:
    """float64: the two updates agree to rounding there (float32 rounding near eps is ~1e-5 relative)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3)).double()


def test_same_updates_as_fastai_adam_with_scheduled_hypers_and_no_wd_on_bias():
    from fastai.optimizer import Adam

    a, b = model(), model()
    groups_a = [list(a[:2].parameters()), list(a[2:].parameters())]  # two layer groups, as a splitter makes
    groups_b = [list(b[:2].parameters()), list(b[2:].parameters())]
    ref, fused = Adam(groups_a, lr=1e-2, wd=0.1), fused_adam(groups_b, lr=1e-2, wd=0.1)
    for opt, net in ((ref, a), (fused, b)):  # what Learner(wd_bn_bias=False) does to biases and BatchNorm
        for p in (net[0].bias, net[1].weight, net[1].bias, net[3].bias):
            opt.state[p]["do_wd"] = False
    gen = torch.Generator().manual_seed(1)
    for step in range(6):
        x, y = torch.randn(8, 6, generator=gen, dtype=torch.float64), torch.randint(0, 3, (8,), generator=gen)
        for opt, net in ((ref, a), (fused, b)):
            opt.set_hyper("lr", [1e-3 * (step + 1), 1e-2 / (step + 1)])  # what fit_one_cycle's scheduler does
            opt.set_hyper("mom", 0.95 - 0.02 * step)
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
            opt.zero_grad()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-12, atol=1e-14)
        assert pb.grad is not None and not pb.grad.any()  # zero_grad zeroed them
    assert not torch.equal(b[3].weight, model()[3].weight)  # it trained
    ia, ib = next(iter(ref.state.values())), next(iter(fused.state.values()))
    torch.testing.assert_close(ia["grad_avg"], ib["grad_avg"], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(ia["sqr_avg"], ib["sqr_avg"], rtol=1e-12, atol=1e-16)
    assert ia["step"] == int(ib["step"]) == 6


def test_frozen_groups_are_left_alone():
    net = model()
    opt = fused_adam([list(net[:2].parameters()), list(net[2:].parameters())], lr=1e-2)
    opt.freeze_to(1)  # fastai's freeze: the first group gets no gradient
    before = copy.deepcopy(net[0].weight.detach())
    nn.functional.cross_entropy(net(torch.randn(4, 6, dtype=torch.float64)), torch.tensor([0, 1, 2, 0])).backward()
    opt.step()
    assert torch.equal(net[0].weight, before) and not torch.equal(net[3].weight, model()[3].weight)
