"""The fast inference path matches the eager model; its cache follows the weights; the precision switch."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from core.nets import inference
from core.nets.models import create_model, offline_weights_file, preprocess
from core.train import features as feats

FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


def fashion_photos(n: int) -> list[Image.Image]:
    """The first n Fashion-MNIST test images (Debian's dataset-fashion-mnist) as RGB photos."""
    with gzip.open(FASHION) as fh:
        data = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    return [Image.fromarray(data[i], "L").convert("RGB") for i in range(n)]


def scrambled_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial running statistics and affine weights, so folding has work to do."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return model.eval()


@pytest.mark.skipif(
    not FASHION.is_file() or offline_weights_file() is None, reason="needs dataset-fashion-mnist + offline weights"
)
def test_fast_path_matches_eager_on_real_photos():
    """mobilenet_v2 with its ImageNet weights, real photos at 224 px: same top-5, probabilities within 1e-4."""
    from core.nets.models import load_imagenet

    model = load_imagenet("mobilenet_v2").model
    x = torch.cat([preprocess(img, 224) for img in fashion_photos(6)])  # (6, 3, 224, 224)
    with torch.inference_mode():
        eager = model(x).softmax(1)
    fast = inference.logits_of(model, x).softmax(1)
    assert torch.equal(fast.topk(5).indices, eager.topk(5).indices)
    assert (fast - eager).abs().max() < 1e-4
    fast_module = inference.fast_forward(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast_module.modules())  # every BatchNorm folded
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the eager model is untouched


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2"])
def test_features_and_logits_match_eager_fastai_layout(arch):
    """fastai's Sequential(body, head), random init with scrambled BatchNorm: pooled features and logits."""
    torch.manual_seed(0)
    model = scrambled_bn(create_model(arch, 5, pretrained=False))
    x = torch.randn(3, 3, 64, 64)
    with torch.inference_mode():
        eager_feats = feats.pooled_body(model)(x)  # (3, 2*nf)
        eager_logits = model(x)
    torch.testing.assert_close(inference.features_of(model, x), eager_feats, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(inference.logits_of(model, x), eager_logits, rtol=1e-4, atol=1e-4)
    assert inference.fast_forward(model).route.startswith("fx fuse")


def test_built_once_rebuilt_when_weights_change_model_left_as_is():
    torch.manual_seed(0)
    model = scrambled_bn(create_model("resnet18", 3, pretrained=False)).train()
    x = torch.randn(2, 3, 32, 32)
    first = inference.fast_forward(model)
    assert inference.fast_forward(model) is first  # cached: the page's every prediction reuses it
    assert model.training and all(p.requires_grad for p in model.parameters())  # mode and grads untouched
    with torch.no_grad():  # what an optimizer step or load_state_dict does: in-place updates
        model[1][-1].weight.mul_(2.0)
    second = inference.fast_forward(model)
    assert second is not first
    with torch.inference_mode():
        expected = model.eval()(x)
    torch.testing.assert_close(inference.logits_of(model, x), expected, rtol=1e-4, atol=1e-4)


def test_untraceable_model_falls_back_to_an_eager_copy():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 2)

        def forward(self, x):
            return self.lin(x) if x.sum() > 0 else -self.lin(x)  # data-dependent: torch.fx cannot trace it

    model = Branchy().eval()
    x = torch.ones(1, 4)
    assert inference.fast_forward(model).route.startswith("eager copy")
    torch.testing.assert_close(inference.logits_of(model, x), model(x))


# ---- mixed precision switch ------------------------------------------------------------------


def test_precision_rule(monkeypatch):
    """CPUs train in fp32 with or without native bf16 (docs/precision.md); PETLAB_PRECISION forces another."""
    monkeypatch.delenv(inference.PRECISION_ENV, raising=False)
    for native in (False, True):
        monkeypatch.setattr(inference, "cpu_has_native_bf16", lambda native=native: native)
        assert inference.precision_for("cpu") == "fp32"  # the same numbers on every CPU
    assert inference.precision_for("mps") == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert inference.precision_for("cuda") == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert inference.precision_for("cuda") == "fp16"
    monkeypatch.setenv(inference.PRECISION_ENV, "bf16")
    assert inference.precision_for("cpu") == "bf16"  # the override wins: one machine acts as another
    monkeypatch.setenv(inference.PRECISION_ENV, "fp32")
    assert inference.precision_for("cuda") == "fp32"
    monkeypatch.setenv(inference.PRECISION_ENV, "auto")
    assert inference.precision_for("cpu") == "fp32"
    monkeypatch.setenv(inference.PRECISION_ENV, "bf61")
    with pytest.raises(ValueError, match="PETLAB_PRECISION"):
        inference.precision_for("cpu")  # a typo is an error, not a silent fp32
    with pytest.raises(ValueError, match="precision"):
        inference.autocast("cpu", "fp8")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_in_low_precision_and_validates_in_fp32(precision):
    """Training batches run under autocast; validation batches (the stored numbers) in fp32."""
    low = torch.bfloat16 if precision == "bf16" else torch.float16
    assert inference.mixed_precision_callbacks("cpu", "fp32") == []
    (cb,) = inference.mixed_precision_callbacks("cpu", precision)

    class Probe:  # the part of a fastai Learner the callback touches
        pred = None
        training = True

    cb.learn = Probe()
    seen = {}
    for training in (True, False):
        cb.learn.training = training
        cb.before_batch()
        seen[training] = nn.Linear(4, 4)(torch.randn(2, 4)).dtype  # inside the batch's forward pass
        cb.learn.pred = torch.zeros(2, dtype=low)
        cb.after_pred()
        assert cb.learn.pred.dtype == torch.float32
        cb.after_loss()
        assert nn.Linear(4, 4)(torch.randn(2, 4)).dtype == torch.float32  # autocast closed after the loss
    assert seen == {True: low, False: torch.float32}


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_mixed_precision_opens_its_autocast_for_training_batches_only(precision):
    """On CUDA fastai's MixedPrecision (gradient scaler and all), its autocast skipped for validation batches."""
    from fastai.callback.fp16 import MixedPrecision

    (cb,) = inference.mixed_precision_callbacks("cuda", precision)
    assert isinstance(cb, MixedPrecision) and cb.amp_mode.value == precision
    opened = []

    class Recording:  # stands in for the torch.autocast("cuda") that before_fit makes on a GPU
        def __enter__(self):
            opened.append(cb.learn.training)

        def __exit__(self, *exc):
            opened.append("closed")

    class Probe:
        pred = None
        training = True

    cb.learn, cb.autocast = Probe(), Recording()
    for training in (True, False, True):
        cb.learn.training = training
        cb.before_batch()
        cb.learn.pred = torch.zeros(2)
        cb.after_pred()
        cb.after_loss()
    assert opened == [True, "closed", True, "closed"]


def test_features_are_fp32_whatever_the_precision(monkeypatch):
    """Extraction ignores PETLAB_PRECISION: cached features are the numbers every machine computes."""
    torch.manual_seed(0)
    model = scrambled_bn(create_model("mobilenet_v2", 3, pretrained=False))
    x = torch.randn(2, 3, 32, 32)
    monkeypatch.setenv(inference.PRECISION_ENV, "fp32")
    fp32 = inference.features_of(model, x)
    monkeypatch.setenv(inference.PRECISION_ENV, "bf16")
    assert fp32.dtype == torch.float32 and torch.equal(inference.features_of(model, x), fp32)


def test_precision_note_and_record_field():
    from dataclasses import asdict

    from core.store.records import RecordError, RunConfig, RunRecord, StageConfig

    old = {"arch": "mobilenet_v2", "classes": ["a", "b"], "img_size": 64, "title": "t", "device": "cpu",
           "config": asdict(RunConfig(dataset="d", stages=(StageConfig(epochs=1, lr_max=1e-3),)))}  # fmt: skip
    record = RunRecord.from_json(old)  # a run.json written before the field existed reads as fp32
    assert record.precision == "fp32" and inference.precision_note(record).startswith("Precision: fp32 on cpu")
    bf16 = RunRecord.from_json({**old, "precision": "bf16"})
    assert bf16.to_json()["precision"] == "bf16"
    assert inference.precision_note(bf16).startswith("Precision: bf16 mixed precision")
    with pytest.raises(RecordError, match="precision"):
        RunRecord.from_json({**old, "precision": 16})


# ---- head loaders: whole batches by indexing --------------------------------------------------


def test_batch_loaders_index_whole_batches_like_fastai():
    from fastai.data.load import DataLoader
    from fastai.torch_core import set_seed

    rng = np.random.default_rng(0)
    data = feats.FeatureSet(
        train_x=rng.normal(size=(2, 37, 6)).astype(np.float32),
        train_y=np.arange(37) % 5,
        valid_x=rng.normal(size=(11, 6)).astype(np.float32),
        valid_y=np.arange(11) % 5,
        seconds=0.0,
        from_cache=False,
    )
    dls = feats.feature_dls(data, bs=8, device=torch.device("cpu"), seed=3)
    batches = list(dls.train)
    assert len(batches) == len(dls.train) == 4  # 37 // 8, ragged last batch dropped as fastai does
    order = torch.cat([yb for _, yb in batches])
    set_seed(3)  # fastai's own per-item DataLoader with the same seed: the same shuffled order
    reference = DataLoader(feats.FeatureViews(data.train_x, data.train_y), bs=8, shuffle=True, drop_last=True)
    assert torch.equal(order, torch.cat([yb for _, yb in reference]))
    xb, yb = batches[0]
    assert xb.shape == (8, 6) and yb.dtype == torch.int64
    dls.train.dataset.view = 1  # what view_switcher does at epoch 1
    xb1, yb1 = dls.train.dataset.batch(torch.tensor([2, 5]))
    np.testing.assert_array_equal(xb1.numpy(), data.train_x[1, [2, 5]])
    np.testing.assert_array_equal(yb1.numpy(), data.train_y[[2, 5]])
    valid = list(dls.valid)
    assert [len(y) for _, y in valid] == [11]  # valid keeps every item
    np.testing.assert_array_equal(valid[0][0].numpy(), data.valid_x)


def test_training_callbacks_channels_last_then_back():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    (layout,) = inference.training_callbacks("cpu", "fp32")  # fp32: the layout callback alone
    assert len(inference.training_callbacks("cpu", "bf16")) == 2

    class Probe:
        xb = (torch.randn(2, 3, 8, 8),)

    Probe.model = model
    layout.learn = Probe()
    layout.before_fit()
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    layout.before_batch()
    assert layout.learn.xb[0].is_contiguous(memory_format=torch.channels_last)
    layout.after_fit()
    assert model[0].weight.is_contiguous()
    assert inference.training_callbacks("mps", "fp32") == []


OUTSIDE_PHOTOS = Path.home() / ".cache" / "petlab" / "outside-photos"  # bench/not_sure.py's scikit-image photos


def reference_preprocess(image: Image.Image, size: int) -> torch.Tensor:
    """The page's preprocessing as it was written before it was made faster: centre box, resize, normalise."""
    from core.nets.models import IMAGENET_MEAN, IMAGENET_STD

    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    crop = image.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side))
    arr = np.asarray(crop, dtype=np.float32)
    mean, std = (
        np.float32(255) * np.array(IMAGENET_MEAN, np.float32),
        np.float32(255) * np.array(IMAGENET_STD, np.float32),
    )
    return torch.from_numpy(np.ascontiguousarray(((arr - mean) / std).transpose(2, 0, 1)))[None]


def test_faster_preprocess_gives_the_same_pixels_and_logits():
    """Row-wise normalising and the channels_last view: the very same numbers as before, on real photos."""
    from core.data.synthetic import draw_example

    photos = [draw_example(3, np.random.default_rng(0), (1024, 768))]
    photos += fashion_photos(2) if FASHION.is_file() else []
    photos += [Image.open(p).convert("RGB") for p in sorted(OUTSIDE_PHOTOS.glob("*.*"))[:6]]
    torch.manual_seed(0)
    model = scrambled_bn(create_model("mobilenet_v2", 4, pretrained=False))
    for img in photos:
        before = reference_preprocess(img, 64)
        nchw, nhwc = preprocess(img, 64), preprocess(img, 64, channels_last=True)
        assert torch.equal(before, nchw) and torch.equal(before, nhwc)
        assert nhwc.is_contiguous(memory_format=torch.channels_last)  # no transposing copy
        assert torch.equal(inference.logits_of(model, before), inference.logits_of(model, nhwc))


def test_forget_drops_the_twin_after_a_weight_is_replaced():
    torch.manual_seed(0)
    model = scrambled_bn(create_model("resnet18", 3, pretrained=False))
    first = inference.fast_forward(model)
    model[1][-1].weight = nn.Parameter(model[1][-1].weight.detach() * 2)  # a new tensor, not an in-place update
    assert inference.fast_forward(model) is first  # not seen: only in-place versions are checked
    inference.forget(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        expected = model.eval()(x)
    torch.testing.assert_close(inference.logits_of(model, x), expected, rtol=1e-4, atol=1e-4)
