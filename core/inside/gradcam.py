"""Grad-CAM (Selvaraju et al. 2017): which regions pushed the model towards a class."""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from core.inside.activations import capture_activations


def grad_cam(
    model: nn.Module, x: torch.Tensor, layer: nn.Module, class_idx: int | None = None
) -> tuple[np.ndarray, int]:
    """Heat map in [0, 1] at input resolution for class_idx (default: the top class) and that index.

    Weights each channel of `layer`'s output by the mean gradient of the class score over it,
    sums, keeps the positive part. The model is not modified; gradients are computed on a copy of
    the input only, so a model shared between sessions can be used (under the caller's lock).
    """
    model.eval()
    x = x.detach().clone()
    with torch.enable_grad(), capture_activations(model, {"target": layer}, keep_grad=True) as acts:
        logits = model(x)  # (1, n_classes)
        idx = int(logits[0].argmax()) if class_idx is None else int(class_idx)
        feature = acts["target"]  # (1, C, h, w), e.g. (1, 512, 7, 7) for resnet34 layer4 at 224 px
        (grads,) = torch.autograd.grad(logits[0, idx], feature)
    return heat_map(feature.detach(), grads, x.shape[-2:]), idx


def heat_map(feature: torch.Tensor, grads: torch.Tensor, size: tuple[int, int] | torch.Size) -> np.ndarray:
    """Grad-CAM's map from a layer's output and the class score's gradient there: (1, C, h, w) each -> size in [0, 1].

    Each channel weighted by its mean gradient, summed, the positive part kept, upsampled, scaled to [0, 1].
    """
    weights = grads.mean(dim=(2, 3), keepdim=True)  # (1, C, 1, 1)
    cam = F.relu((weights * feature).sum(dim=1, keepdim=True))  # (1, 1, h, w)
    cam = F.interpolate(cam, size=tuple(size), mode="bilinear", align_corners=False)[0, 0]
    cam = cam - cam.min()
    top = float(cam.max())
    return (cam / top if top > 0 else cam).float().cpu().numpy()


@functools.lru_cache(maxsize=8)
def colour_table(cmap: str) -> np.ndarray:
    """The colour map's 256 RGB colours for heat levels 0..255, (256, 3) uint8 (looked up, not recomputed per pixel)."""
    from matplotlib import colormaps

    return (colormaps[cmap](np.arange(256) / 255.0)[:, :3] * 255).astype(np.uint8)


def overlay(image: Image.Image, heat: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> Image.Image:
    """Blend a [0, 1] heat map (any size) over an RGB image with a colour map."""
    heat_img = Image.fromarray((np.clip(heat, 0, 1) * 255).astype(np.uint8)).resize(image.size, Image.BILINEAR)
    colour = colour_table(cmap)[np.asarray(heat_img)]  # (H, W, 3) uint8
    return Image.blend(image.convert("RGB"), Image.fromarray(colour), alpha)
