"""Prediction: exact top-k from a model with known logits, not-sure rules, Grad-CAM leaves the model untouched."""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from core.data.synthetic import draw_example
from core.inside.activations import hook_count
from core.nets import inference
from core.nets.models import LoadedModel, create_model, imagenet_classifier, preprocess
from core.predict import prediction as pred


class FixedLogits(nn.Module):
    """Ignores the image and returns the same logits for every item of the batch."""

    def __init__(self, logits: list[float]):
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(logits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(x.shape[0], -1)  # (B, n_classes)


def fixed(logits: list[float], classes: list[str] | None = None) -> LoadedModel:
    classes = classes or [f"c{i}" for i in range(len(logits))]
    return LoadedModel(FixedLogits(logits).eval(), "mobilenet_v2", classes, "fixed", "run", img_size=32)


@pytest.fixture(scope="module")
def image():
    return draw_example(1, np.random.default_rng(0), (80, 64))


def test_top_k_exact_sorted_and_sums(image):
    logits = [0.0, 3.0, 1.0, 2.0, -1.0, 0.5, 4.0]
    result = pred.predict(fixed(logits), image, k=5)
    expected = torch.tensor(logits).softmax(0)
    assert result.labels == ["c6", "c1", "c3", "c2", "c5"]
    assert result.indices == [6, 1, 3, 2, 5]
    assert result.probs == sorted(result.probs, reverse=True)
    assert result.probs == pytest.approx([float(expected[i]) for i in result.indices], abs=1e-6)
    assert sum(result.probs) < 1.0
    all_probs = pred.predict(fixed(logits), image, k=len(logits)).probs
    assert sum(all_probs) == pytest.approx(1.0, abs=1e-6)
    assert result.energy == pytest.approx(-math.log(sum(math.exp(v) for v in logits)), abs=1e-5)
    assert result.seconds > 0


def test_k_larger_than_classes(image):
    result = pred.predict(fixed([1.0, 2.0]), image, k=5)
    assert result.labels == ["c1", "c0"]


def test_entropy_bounds():
    assert pred.normalised_entropy(torch.tensor([1.0, 0.0, 0.0])) == pytest.approx(0.0, abs=1e-9)
    assert pred.normalised_entropy(torch.full((10,), 0.1)) == pytest.approx(1.0, abs=1e-6)
    assert pred.normalised_entropy(torch.tensor([1.0])) == 0.0


def test_confident_when_one_class_dominates(image):
    result = pred.predict(fixed([10.0, 0.0, 0.0, 0.0]), image)
    assert not result.not_sure and result.reasons == []
    assert result.top == "c0" and result.top_prob > 0.99


def test_not_sure_when_probabilities_are_flat(image):
    result = pred.predict(fixed([1.0, 1.0, 1.0, 1.0]), image)
    assert result.not_sure
    assert result.top_prob == pytest.approx(0.25)
    assert any("top probability" in r for r in result.reasons)
    assert any("spread out" in r for r in result.reasons)


def test_judge_thresholds_are_strict():
    rule = pred.NotSureRule(min_top_prob=0.5, max_entropy=0.6, max_distance=0.8, flagged_share=0.05)
    assert pred.judge(0.5, 0.6, 0.8, rule) == []
    reasons = pred.judge(0.49, 0.61, 0.81, rule)
    assert len(reasons) == 3 and "only 5% of validation images" in reasons[2]
    assert pred.judge(0.9, 0.1, None, rule) == []  # no distance (ImageNet model): softmax rules only
    assert pred.judge(0.9, 0.1, 5.0, pred.NotSureRule()) == []  # no line: distance ignored


def test_reasons_show_the_digits_that_cross_the_line():
    """Issue 19 item 10: "entropy 0.60 > 0.60" compared numbers nobody could see (0.603 and 0.6)."""
    rule = pred.NotSureRule(min_top_prob=0.5, max_entropy=0.6, max_distance=0.8, flagged_share=0.05)
    top, spread, far = pred.judge(0.4996, 0.6034, 0.80012, rule)
    assert "49.96% is below 50.00%" in top
    assert "entropy 0.603 > 0.600" in spread
    assert "feature distance 0.8001 > 0.8000" in far
    top, spread, far = pred.judge(0.31, 0.93, 1.25, rule)  # far apart: the usual digits
    assert "31% is below 50%" in top and "entropy 0.93 > 0.60" in spread and "1.250 > 0.800" in far


@pytest.fixture(scope="module")
def tiny_mobilenet():
    torch.manual_seed(0)
    model = imagenet_classifier("mobilenet_v2", pretrained=False).eval()  # random init, 1000 outputs
    return LoadedModel(model, "mobilenet_v2", [f"k{i}" for i in range(1000)], "random", "random", img_size=64)


def test_predict_leaves_shared_model_untouched(tiny_mobilenet, image):
    before = {k: v.clone() for k, v in tiny_mobilenet.model.state_dict().items()}
    result = pred.predict(tiny_mobilenet, image, k=5)
    assert len(result.labels) == 5
    assert not tiny_mobilenet.model.training
    after = tiny_mobilenet.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_explain_overlay_and_no_hooks_left(tiny_mobilenet, image):
    cls = pred.predict(tiny_mobilenet, image).indices[0]
    out = pred.explain(tiny_mobilenet, image, cls)
    assert isinstance(out, Image.Image) and out.size == (64, 64)
    assert hook_count(tiny_mobilenet.model) == 0
    assert not tiny_mobilenet.model.training
    assert all(p.grad is None for p in tiny_mobilenet.model.parameters())


@pytest.fixture(scope="module")
def tiny_run():
    """A fastai-layout run model (AdaptiveConcatPool2d + BatchNorm1d head), untrained, 6 classes, 64 px."""
    torch.manual_seed(0)
    model = create_model("mobilenet_v2", 6, pretrained=False).eval()
    with torch.no_grad():  # BatchNorm running stats that are not the identity
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return LoadedModel(model, "mobilenet_v2", [f"r{i}" for i in range(6)], "run", "run", img_size=64)


@pytest.mark.parametrize("which", ["tiny_mobilenet", "tiny_run"])
def test_one_forward_gives_the_fast_paths_probabilities_and_grad_cam(which, image, request):
    """Grad-CAM's forward is the prediction's: the fast path's probabilities (within 1e-4), the eager
    Grad-CAM's overlay, from a single forward of the body and none of the eager model."""
    loaded = request.getfixturevalue(which)
    n = len(loaded.classes)
    expected = inference.logits_of(loaded.model, preprocess(image, loaded.img_size))[0]  # the fast path alone
    calls = {"eager": 0, "fast": 0}
    eager = loaded.model[0].register_forward_hook(lambda *_: calls.__setitem__("eager", calls["eager"] + 1))
    twin = inference.body_module(loaded.model)
    fast = twin.register_forward_hook(lambda *_: calls.__setitem__("fast", calls["fast"] + 1))
    try:
        result = pred.predict(loaded, image, k=n, cam=True)
    finally:
        eager.remove()
        fast.remove()
    assert calls == {"eager": 0, "fast": 1}  # one forward of the body, through the fast path
    probs = torch.zeros(n)
    probs[result.indices] = torch.tensor(result.probs)
    assert torch.allclose(probs, expected.softmax(0), atol=1e-4)
    assert result.energy == pytest.approx(pred.energy_score(expected), abs=1e-4)
    assert pred.predict(loaded, image, k=n).probs == pytest.approx(result.probs, abs=1e-6)  # cam or not
    # the same map as Grad-CAM with hooks on the eager model (overlay pixels within float rounding)
    old = np.asarray(pred.explain(loaded, image, result.indices[0]), dtype=int)
    assert isinstance(result.cam, Image.Image) and result.cam.size == (loaded.img_size, loaded.img_size)
    assert np.abs(np.asarray(result.cam, dtype=int) - old).max() <= 2
    assert hook_count(loaded.model) == 0 and not loaded.model.training
    assert all(p.grad is None for p in loaded.model.parameters())


def test_rejudge_applies_another_rule_to_the_same_numbers(image):
    result = pred.predict(fixed([2.0, 1.0, 0.0]), image)
    strict = pred.rejudge(result, pred.NotSureRule(min_top_prob=0.99))
    assert strict.not_sure and any("top probability" in r for r in strict.reasons)
    assert strict.probs == result.probs and strict.labels == result.labels
    lenient = pred.rejudge(strict, pred.NotSureRule(min_top_prob=0.0, max_entropy=1.0))
    assert not lenient.not_sure and lenient.reasons == []


def test_a_model_of_another_layout_predicts_without_grad_cam(image):
    result = pred.predict(fixed([1.0, 3.0]), image, cam=True)
    assert result.top == "c1" and result.cam is None


def test_chart_has_one_bar_per_class(image):
    result = pred.predict(fixed([3.0, 2.0, 1.0]), image, k=3)
    fig = pred.top_k_chart(result)
    assert list(fig.data[0].y) == ["c2", "c1", "c0"]  # most probable drawn on top
    assert list(fig.data[0].x) == pytest.approx(result.probs[::-1])
