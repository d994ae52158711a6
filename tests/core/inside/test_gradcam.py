"""Grad-CAM: input-sized map in [0, 1], the chosen class, no hooks left."""

import numpy as np
import torch
from PIL import Image
from torch import nn

from core.inside.activations import hook_count
from core.inside.gradcam import grad_cam, overlay


def tiny_net() -> nn.Sequential:
    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())
    return nn.Sequential(body, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))).eval()


def test_shape_range_and_class():
    model = tiny_net()
    x = torch.randn(1, 3, 20, 20)
    heat, idx = grad_cam(model, x, model[0][2])
    assert heat.shape == (20, 20)
    assert heat.min() >= 0 and heat.max() <= 1 + 1e-6
    assert idx == int(model(x).argmax())
    heat2, idx2 = grad_cam(model, x, model[0][2], class_idx=2)
    assert idx2 == 2 and heat2.shape == (20, 20)
    assert hook_count(model) == 0
    assert all(p.grad is None for p in model.parameters())


def test_overlay_keeps_size():
    img = Image.new("RGB", (30, 20), (10, 200, 30))
    out = overlay(img, np.linspace(0, 1, 25).reshape(5, 5))
    assert out.size == (30, 20) and out.mode == "RGB"


def test_overlay_colours_are_the_colour_maps():
    """The looked-up colours are matplotlib's own for each heat level (alpha 1: only the colour map shows)."""
    from matplotlib import colormaps

    heat = np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)
    out = np.asarray(overlay(Image.new("RGB", (16, 16)), heat, alpha=1.0))
    levels = (np.clip(heat, 0, 1) * 255).astype(np.uint8)
    expected = (colormaps["jet"](levels / 255.0)[..., :3] * 255).astype(np.uint8)
    assert np.array_equal(out, expected)
