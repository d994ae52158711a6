"""Occlusion: hiding the region a hand-made model depends on lowers the class probability there only."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from core.inside.occlusion import (
    OcclusionResult,
    drop_caption,
    drop_overlay,
    occlusion_figures,
    occlusion_map,
    square_positions,
)


class TopLeftModel(nn.Module):
    """Logit of class 0 = 4 × mean of the top-left 8x8 of channel 0; class 1 is fixed at 0."""

    def forward(self, x):
        score = 4 * x[:, 0, :8, :8].mean(dim=(1, 2))  # (B,)
        return torch.stack([score, torch.zeros_like(score)], dim=1)  # (B, 2)


def test_square_positions():
    assert square_positions(32, 8, 8).tolist() == [0, 8, 16, 24]
    assert square_positions(30, 8, 8).tolist() == [0, 8, 16, 22]  # the last square is flush with the edge
    with pytest.raises(ValueError):
        square_positions(16, 20, 4)


def test_occluding_the_used_region_lowers_probability():
    x = torch.ones(1, 3, 32, 32)
    progress = []
    res = occlusion_map(
        TopLeftModel(), x, target=0, patch=8, stride=8, batch_size=5, progress=lambda d, t: progress.append(d)
    )
    base = torch.sigmoid(torch.tensor(4.0)).item()  # softmax of [4, 0]
    assert res.base_prob == pytest.approx(base, abs=1e-6)
    assert res.prob.shape == (4, 4) and progress[-1] == 16
    assert res.prob[0, 0] == pytest.approx(0.5, abs=1e-6)  # the whole region hidden: logit 0
    others = np.ones_like(res.prob, dtype=bool)
    others[0, 0] = False
    np.testing.assert_allclose(res.prob[others], base, atol=1e-6)  # elsewhere nothing changes
    assert (res.label == 0).all()  # ties at 0.5 go to class 0 (max returns the first)
    # half-overlapping squares lower it half as much
    half = occlusion_map(TopLeftModel(), x, target=0, patch=8, stride=4)
    assert half.prob[0, 1] == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item(), abs=1e-6)
    pix = res.pixel_map(32)
    assert pix.shape == (32, 32) and pix[0, 0] == pytest.approx(0.5, abs=1e-6)


def test_label_map_changes_where_evidence_is_hidden():
    x = torch.full((1, 3, 32, 32), 0.1)  # class 0 logit 0.4 > 0; hiding with -1 flips it
    res = occlusion_map(TopLeftModel(), x, patch=8, stride=8, fill=-1.0)
    assert res.target == 0
    assert res.label[0, 0] == 1 and res.label[1, 1] == 0
    prob_fig, label_fig = occlusion_figures(res, ["cat", "dog"])
    assert prob_fig.data[0].z.shape == (4, 4)
    assert label_fig.data[0].customdata[0][0] == "dog"


def test_mobilenet_batched_shape():
    from core.nets.models import imagenet_classifier

    torch.manual_seed(0)
    model = imagenet_classifier("mobilenet_v2", pretrained=False).eval()
    res = occlusion_map(model, torch.randn(1, 3, 64, 64), patch=32, stride=16, batch_size=4)
    assert res.prob.shape == (3, 3) and res.label.max() < 1000
    assert ((res.prob >= 0) & (res.prob <= 1)).all()


def test_drop_map():
    res = occlusion_map(TopLeftModel(), torch.ones(1, 3, 32, 32), target=0, patch=8, stride=8)
    drop = res.drop_map(32)
    assert drop.shape == (32, 32) and drop.min() == pytest.approx(0, abs=1e-6)
    assert drop[0, 0] == pytest.approx(1 - 0.5 / res.base_prob, abs=1e-6)


def _result(prob: np.ndarray, base: float) -> OcclusionResult:
    """Hand-set maps: one 16 px square per cell of a 2×2 grid over a 32 px image."""
    return OcclusionResult(
        prob=prob, label=np.zeros((2, 2), np.int64), label_prob=prob, ys=np.array([0, 16]), xs=np.array([0, 16]),
        patch=16, stride=16, target=0, base_prob=base,
    )  # fmt: skip


def test_drop_overlay_is_red_exactly_where_hiding_hurts_and_caption_agrees():
    grey = Image.new("RGB", (32, 32), (128, 128, 128))
    hurt = _result(np.array([[0.2, 0.8], [0.8, 0.8]], np.float32), base=0.8)  # top-left square: 75 % drop
    out = np.asarray(drop_overlay(grey, hurt)).astype(int)
    r, g, b = out[4, 4]
    assert r > 160 and g < 80 and b < 80  # red where hiding hurts
    assert tuple(out[28, 28]) == (128, 128, 128)  # untouched elsewhere
    caption = drop_caption(hurt, "cat", 32)
    assert caption.startswith("Red = hiding that part lowers p(cat) = 80%") and "75% drop" in caption
    flat = _result(np.array([[0.79, 0.8], [0.8, 0.81]], np.float32), base=0.8)  # at most ~1 % drop
    assert np.array_equal(np.asarray(drop_overlay(grey, flat)), np.asarray(grey))  # no red at all
    assert drop_caption(flat, "cat", 32).startswith("No red: hiding any 16 px square")
