"""Projecting one activation back to pixels: deconvnet (Zeiler & Fergus) and guided backprop.

Both run the chosen unit's signal backwards through the network; they differ only at ReLUs.
The deconvnet passes a gradient where the *gradient* is positive, guided backprop where both the
gradient and the forward input are positive. captum implements both by hooking `nn.ReLU`
modules, so we work on a private copy of the truncated network: ReLUs made non-inplace and
ReLU6 split into ReLU + a straight-through clamp (so captum sees the ReLU and saturated units
still project). The shared model is never touched.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from PIL import Image
from torch import nn

from core.inside.activations import truncate

METHODS = {"deconvnet": "Deconvolution", "guided": "GuidedBackprop"}


class _ClampMax(nn.Module):
    """min(x, top) forwards, identity backwards: the upper half of ReLU6, which must not block the signal."""

    def __init__(self, top: float) -> None:
        super().__init__()
        self.top = top

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - (x - x.clamp(max=self.top)).detach()  # straight-through: saturated units still project


class _Unit(nn.Module):
    """Runs the truncated network and returns one unit (channel, y, x), or the channel's sum: (B,)."""

    def __init__(self, net: nn.Module, channel: int, position: tuple[int, int] | None) -> None:
        super().__init__()
        self.net, self.channel, self.position = net, channel, position

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)  # (B, C, h, w)
        if self.position is None:
            return out[:, self.channel].sum(dim=(1, 2))
        y, xx = self.position
        return out[:, self.channel, y, xx]


def projectable_copy(model: nn.Module, stage: str) -> nn.Sequential:
    """A private copy of the network up to `stage`, with captum-friendly ReLUs and no hooks.

    Take the shared model's lock around this call: deepcopy also copies hooks someone else has on.
    """
    net = copy.deepcopy(truncate(model, stage)).eval()
    for module in net.modules():
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()
        module._backward_hooks.clear()
    for name, module in list(net.named_modules()):
        if isinstance(module, nn.ReLU6):
            parent_name, _, child = name.rpartition(".")
            parent = net.get_submodule(parent_name) if parent_name else net
            setattr(parent, child, nn.Sequential(nn.ReLU(), _ClampMax(6.0)))
        elif isinstance(module, nn.ReLU):
            module.inplace = False
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def strongest_unit(net: nn.Module, x: torch.Tensor, channel: int) -> tuple[tuple[int, int], float]:
    """Position (y, x) and value of the channel's strongest unit for x (1, 3, H, W)."""
    with torch.no_grad():
        act = net(x)[0, channel]  # (h, w)
    flat = int(act.argmax())
    return divmod(flat, act.shape[1]), float(act.max())


def project(
    net: nn.Module, x: torch.Tensor, channel: int, method: str, position: tuple[int, int] | None = None
) -> np.ndarray:
    """(H, W, 3) signal in input space for one unit of `channel` (whole channel if position is None).

    `net` is a projectable_copy; method is "deconvnet" or "guided".
    """
    from captum import attr

    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}")
    explainer = getattr(attr, METHODS[method])(_Unit(net, channel, position))
    inputs = x.detach().clone().requires_grad_(True)
    with torch.enable_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")  # captum removes them itself
        signal = explainer.attribute(inputs)  # (1, 3, H, W)
    return signal[0].detach().permute(1, 2, 0).numpy()


def signal_image(signal: np.ndarray, gain: float = 1.0) -> Image.Image:
    """Signed (H, W, 3) signal -> RGB picture: grey is zero, scaled by its 99.5th |percentile|."""
    top = float(np.percentile(np.abs(signal), 99.5))
    scaled = signal / top * 0.5 * gain if top > 0 else np.zeros_like(signal)
    return Image.fromarray(((np.clip(scaled, -0.5, 0.5) + 0.5) * 255).round().astype(np.uint8))
