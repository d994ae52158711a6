"""Quick prediction with a LoadedModel: top-k classes, timing, and an honest "not sure".

No fastai `load_learner` (no pickles): the page's path is PIL image -> `core.nets.models.preprocess`
(fastai's validation Resize + ImageNet Normalize) -> one forward pass of the body through the fast
path (`core.nets.inference`) -> the head -> softmax -> top-k, and Grad-CAM for the top class from that
same forward (a backward through the head only). The model is shared between sessions: it is only
ever read, in eval mode, with no hooks, so sessions need no lock around it.

"Not sure" combines three simple signals, each a number the page explains:
- the top probability (max softmax, Hendrycks & Gimpel 2017): low means no class stands out;
- the normalised entropy of the softmax (0 = all mass on one class, 1 = uniform over all classes);
- for a run, the distance of the photo's pooled body features to the k-th nearest training image
  (`core.predict.novelty`, Sun et al. 2022), with a line calibrated on validation images. Softmax alone
  cannot see this: a pumpkin can still be "99 % capybara" because softmax only compares classes
  with each other, and the energy −logsumexp(logits) (Liu et al. 2020) is fooled too when the
  photo happens to give large logits.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import plotly.graph_objects as go
import torch
from PIL import Image
from torch import nn

from core.i18n import _, pct, shown_apart
from core.inside.gradcam import grad_cam, heat_map, overlay
from core.nets import inference
from core.nets.models import ARCHS, LoadedModel, denormalise, get_module, preprocess
from core.predict import novelty
from core.predict.novelty import Reference, features_and_logits

CAM_ALPHA = 0.45  # how much of Grad-CAM's colour map covers the photo


@dataclass(frozen=True)
class NotSureRule:
    """Thresholds for saying "not sure" instead of naming a class."""

    min_top_prob: float = 0.5  # below: no class clearly wins
    max_entropy: float = 0.6  # normalised entropy above: probability spread over many classes
    max_distance: float | None = None  # kNN feature distance above (calibrated on validation images): unlike them
    flagged_share: float = 0.05  # share of validation images beyond max_distance, for the message


@dataclass
class Prediction:
    """Top-k classes of one image and what the page says about it."""

    labels: list[str]  # most probable first
    probs: list[float]  # matching probabilities, descending
    indices: list[int]  # class indices of labels
    entropy: float  # normalised softmax entropy in [0, 1]
    energy: float  # -logsumexp(logits), shown for comparison (no longer part of the rule)
    seconds: float  # from decoded PIL image to top-k
    distance: float | None = None  # kNN distance of the body features to the training images (runs only)
    not_sure: bool = False
    reasons: list[str] = field(default_factory=list)
    cam: Image.Image | None = None  # Grad-CAM overlay for the top class (predict(cam=True)), on the model's crop

    @property
    def top(self) -> str:
        return self.labels[0]

    @property
    def top_prob(self) -> float:
        return self.probs[0]


def model_device(model: torch.nn.Module) -> torch.device:
    """The device the model's parameters live on (CPU for models without parameters)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def logits_of(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One read-only forward pass (core.nets.inference's fast path): (B, 3, H, W) -> (B, n_classes) logits on the CPU."""
    return inference.logits_of(model, x)


def normalised_entropy(probs: torch.Tensor) -> float:
    """Entropy of a probability vector divided by log(n): 0 for one-hot, 1 for uniform."""
    n = probs.numel()
    if n < 2:
        return 0.0
    p = probs.clamp_min(1e-12)
    return float(-(p * p.log()).sum() / math.log(n))


def energy_score(logits: torch.Tensor) -> float:
    """Energy -logsumexp(logits) of one logit vector (lower for images like the training data)."""
    return float(-torch.logsumexp(logits.float(), dim=-1))


def judge(top_prob: float, entropy: float, distance: float | None, rule: NotSureRule) -> list[str]:
    """Reasons to be "not sure" under rule (an empty list means: confident)."""
    reasons = []  # each number written with the digits that show why it is over (or under) its line
    if top_prob < rule.min_top_prob:
        prob, line = shown_apart(top_prob, rule.min_top_prob, pct, digits=0)
        reasons.append(_("the top probability {prob} is below {line}").format(prob=prob, line=line))
    if entropy > rule.max_entropy:
        shown, line = shown_apart(entropy, rule.max_entropy, digits=2)
        reasons.append(
            _("the probabilities are spread out (entropy {entropy} > {line})").format(entropy=shown, line=line)
        )
    if rule.max_distance is not None and distance is not None and distance > rule.max_distance:
        shown, line = shown_apart(distance, rule.max_distance, digits=3)
        reasons.append(
            _(
                "the image looks unlike the training images (feature distance {distance} > {line}, "
                "a line only {share} of validation images cross)"
            ).format(distance=shown, line=line, share=pct(rule.flagged_share))
        )
    return reasons


def rule_for(reference: Reference | None, min_top_prob: float = 0.5, max_entropy: float = 0.6) -> NotSureRule:
    """The not-sure rule with the run's calibrated distance line (softmax rules only without a reference)."""
    if reference is None:
        return NotSureRule(min_top_prob=min_top_prob, max_entropy=max_entropy)
    return NotSureRule(min_top_prob, max_entropy, reference.threshold, round(1 - reference.in_rate, 4))


def top_k(probs: torch.Tensor, classes: list[str], k: int = 5) -> tuple[list[str], list[float], list[int]]:
    """The k most probable classes (descending) with their probabilities and indices."""
    k = min(k, probs.numel())
    values, indices = probs.topk(k)
    idx = [int(i) for i in indices]
    return [classes[i] for i in idx], [float(v) for v in values], idx


def cam_parts(loaded: LoadedModel) -> tuple[nn.Module, nn.Module] | None:
    """(pooling, classifier) of the head when Grad-CAM's layer is the body's output, else None.

    True of every model Pet Lab builds (fastai's Sequential(body, head), the ImageNet classifier
    re-laid the same way): the last body stage is Grad-CAM's layer, so one forward of the body gives
    both the prediction and Grad-CAM's feature maps. pooling: (B, C, h, w) -> (B, F); classifier: -> logits.
    """
    model = loaded.model
    if not (isinstance(model, nn.Sequential) and len(model) == 2 and isinstance(model[1], nn.Sequential)):
        return None
    if len(model[1]) < 3:
        return None
    try:
        layer = gradcam_layer(loaded)
    except (AttributeError, KeyError, IndexError):
        return None
    last = model[0]
    while last is not layer and isinstance(last, nn.Sequential) and len(last):
        last = last[-1]
    if last is not layer:
        return None
    return model[1][:2], model[1][2:]


def predict(
    loaded: LoadedModel,
    image: Image.Image,
    k: int = 5,
    rule: NotSureRule | None = None,
    reference: Reference | None = None,
    cam: bool = False,
) -> Prediction:
    """Top-k prediction of one RGB image, timed from the decoded image to the top-k list.

    One forward of the body through the fast path (core.nets.inference, BatchNorm folded) gives the
    last stage's feature maps; the head runs on them eagerly. From that one forward come the
    logits, the pooled features for the kNN distance (with a reference, a run's training
    features) and, with cam=True, Grad-CAM for the top class: the head's gradient with respect to
    those feature maps is all Grad-CAM needs, so it costs a backward through the head only.
    Models not in the Sequential(body, head) layout take the whole fast forward and get no Grad-CAM.
    """
    rule = rule or NotSureRule()
    start = time.perf_counter()
    x = preprocess(image, loaded.img_size, channels_last=True)  # (1, 3, S, S) normalised, the fast path's layout
    dist, overlay_image = None, None
    parts = cam_parts(loaded)
    if parts is None:
        if reference is not None:
            feats, logits = features_and_logits(loaded.model, x)  # (1, F), (1, n_classes)
            logits = logits[0]
            dist = float(novelty.distance(reference, feats)[0])
        else:
            logits = logits_of(loaded.model, x)[0]  # (n_classes,)
        maps = scores = None
    else:
        pooling, classifier = parts
        maps = inference.feature_maps_of(loaded.model, x)  # (1, C, h, w), e.g. (1, 1280, 7, 7) mobilenet_v2 224 px
        with torch.set_grad_enabled(cam):
            maps.requires_grad_(cam)
            feats = pooling(maps)  # (1, F): (1, 2560) for a mobilenet_v2 run, (1, 1280) for the ImageNet model
            scores = classifier(feats)  # (1, n_classes)
        logits = scores.detach()[0].float().cpu()
        if reference is not None:
            dist = float(novelty.distance(reference, feats.detach().float().cpu())[0])
    probs = logits.softmax(dim=0)
    labels, values, idx = top_k(probs, loaded.classes, k)
    seconds = time.perf_counter() - start
    if cam and maps is not None and scores is not None:
        (grads,) = torch.autograd.grad(scores[0, idx[0]], maps)  # d(top class score) / d(feature maps)
        overlay_image = cam_overlay(x, heat_map(maps.detach(), grads, x.shape[-2:]))
    entropy, energy = normalised_entropy(probs), energy_score(logits)
    reasons = judge(values[0], entropy, dist, rule)
    return Prediction(
        labels, values, idx, entropy, energy, seconds, dist, not_sure=bool(reasons), reasons=reasons, cam=overlay_image
    )


def rejudge(pred: Prediction, rule: NotSureRule) -> Prediction:
    """The same prediction under another not-sure rule (no forward: the rule only reads the numbers)."""
    reasons = judge(pred.top_prob, pred.entropy, pred.distance, rule)
    return replace(pred, not_sure=bool(reasons), reasons=reasons)


def gradcam_layer(loaded: LoadedModel) -> torch.nn.Module:
    """The last body stage of the model (e.g. layer4 of a resnet, features.18 of mobilenet_v2)."""
    return get_module(loaded.model, ARCHS[loaded.arch].stages[-1][1])


def cam_overlay(x: torch.Tensor, heat, alpha: float = CAM_ALPHA) -> Image.Image:
    """Grad-CAM's heat map over the centre crop the model saw (x: the preprocessed (1, 3, S, S) batch)."""
    seen = Image.fromarray(denormalise(x[0]))
    return overlay(seen, heat, alpha=alpha)


def explain(loaded: LoadedModel, image: Image.Image, class_idx: int, alpha: float = CAM_ALPHA) -> Image.Image:
    """Grad-CAM overlay for any class_idx, with hooks on the eager model (take the model lock around this).

    The Prediction page gets the top class's overlay from predict(cam=True) instead: no second forward.
    """
    x = preprocess(image, loaded.img_size).to(model_device(loaded.model))  # (1, 3, S, S)
    heat, _ = grad_cam(loaded.model, x, gradcam_layer(loaded), class_idx)  # (S, S) in [0, 1]
    return cam_overlay(x, heat, alpha)


def top_k_chart(pred: Prediction, title: str = "") -> go.Figure:
    """Horizontal plotly bar chart of the top-k probabilities, the most probable on top.

    Built from one dict (plotly validates it once): ~4× cheaper per rerun than go.Bar plus update_layout.
    """
    colours = ["#9e9e9e" if pred.not_sure else "#1f77b4"] + ["#c7c7c7"] * (len(pred.labels) - 1)
    bar = {
        "type": "bar",
        "x": pred.probs[::-1],
        "y": pred.labels[::-1],
        "orientation": "h",
        "marker": {"color": colours[::-1]},
        "text": [pct(p, 1) for p in pred.probs[::-1]],
        "textposition": "auto",
    }
    layout = {
        "xaxis": {"range": [0, 1], "tickformat": ".0%", "title": {"text": _("probability")}},
        "height": 60 + 40 * len(pred.labels),
        "margin": {"l": 10, "r": 10, "t": 30 if title else 10, "b": 10},
    }
    if title:
        layout["title"] = {"text": title}
    return go.Figure({"data": [bar], "layout": layout})
