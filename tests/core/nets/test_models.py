"""Model registry: offline mobilenet_v2 weights, stage paths on every arch, run weights round trip."""

import urllib.error

import pytest
import torch
import torchvision
from PIL import Image

from core.nets import models
from core.store import runs


def test_offline_mobilenet_weights_are_found_and_placed(data_folder):
    assert models.offline_weights_file() is not None
    home = models.prepare_torch_home()
    assert (home / "hub" / "checkpoints" / models.MOBILENET_FILE).is_file()
    assert models.weights_cached("mobilenet_v2")


def test_imagenet_classifier_matches_torchvision():
    torch.manual_seed(0)
    ours = models.imagenet_classifier("mobilenet_v2").eval()
    reference = torchvision.models.mobilenet_v2(weights="IMAGENET1K_V1").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x))
    assert models.imagenet_categories("mobilenet_v2")[207] == "golden retriever"


@pytest.mark.parametrize("arch", models.arch_names())
def test_stage_paths_exist_and_downsample(arch):
    model = models.create_model(arch, 3, pretrained=False).eval()
    sizes = []
    hooks = [models.get_module(model, path) for _, path in models.ARCHS[arch].stages]
    outputs = {}
    handles = [
        m.register_forward_hook(lambda mod, i, o, k=k: outputs.__setitem__(k, o.shape)) for k, m in enumerate(hooks)
    ]
    try:
        with torch.no_grad():
            assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3)
    finally:
        for h in handles:
            h.remove()
    sizes = [outputs[k][-1] for k in range(len(hooks))]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == 32  # stem halves 64 px
    assert isinstance(models.get_module(model, models.ARCHS[arch].first_conv), torch.nn.Conv2d)


def test_missing_weights_raise_a_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("offline")

    calls = []
    monkeypatch.setattr(
        torchvision.models._api, "load_state_dict_from_url", lambda *a, **k: calls.append(1) or offline()
    )
    monkeypatch.setattr(models, "_DOWNLOAD_FAILURES", {})
    with pytest.raises(models.WeightsUnavailable, match="random init"):
        models.create_model("resnet18", 2, pretrained=True)
    with pytest.raises(models.WeightsUnavailable, match="random init"):  # a page rerun does not retry at once
        models.imagenet_classifier("resnet18")
    assert len(calls) == 1


def test_random_init_is_the_same_network_every_time():
    a, b = models.imagenet_classifier("resnet18", pretrained=False), models.imagenet_classifier("resnet18", False)
    torch.testing.assert_close(a.state_dict(), b.state_dict())


def test_run_weights_round_trip(tmp_path):
    from core.storage import atomic_write_json

    model = models.create_model("resnet18", 4, pretrained=False).eval()
    run = tmp_path / "run1"
    models.save_weights(model, run / models.WEIGHTS_FILE)
    config = {"dataset": "d", "arch": "resnet18", "stages": [{"epochs": 1, "lr_max": 1e-3}]}
    record = {"arch": "resnet18", "classes": list("abcd"), "img_size": 64, "title": "r", "config": config}
    atomic_write_json(run / models.RECORD_FILE, record)
    loaded = runs.load_run_model(run)
    assert loaded.kind == "run" and loaded.classes == list("abcd") and loaded.img_size == 64
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model(x))


def test_preprocess_resizes_crops_and_normalises():
    img = Image.new("RGB", (300, 150), tuple(int(m * 255) for m in models.IMAGENET_MEAN))
    x = models.preprocess(img, 64)
    assert x.shape == (1, 3, 64, 64)
    assert x.abs().max() < 0.02  # the ImageNet mean colour normalises to ~0
    back = models.denormalise(x[0])
    assert back.shape == (64, 64, 3) and back.dtype.name == "uint8"


def _has_mps() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def test_pick_device_is_the_device_this_machine_has():
    """CUDA where torch sees a GPU, else Apple's MPS, else the CPU (the 2-core dev machine: cpu)."""
    expected = "cuda" if torch.cuda.is_available() else "mps" if _has_mps() else "cpu"
    assert models.pick_device().type == expected


def test_pick_device_uses_cuda_then_mps_when_present(monkeypatch):
    """The code still chooses a GPU on a machine that has one (forced here: no GPU is lent to the suite)."""
    exact = []
    monkeypatch.setattr(models, "exact_fp32", lambda: exact.append(True))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert models.pick_device() == torch.device("cuda") and exact == [True]  # TF32 off: a GPU's fp32 is a CPU's
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert models.pick_device() == torch.device("mps") and exact == [True]
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    threads = torch.get_num_threads()
    monkeypatch.setenv(models.THREADS_ENV, "1")  # a worker's cap
    try:
        assert models.pick_device() == torch.device("cpu") and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


class _Evil:
    def __reduce__(self):
        return (print, ("this code must never run",))


def test_pickled_weights_are_refused_without_suggesting_weights_only_false(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"weight": _Evil()}, path)
    with pytest.raises(ValueError) as info:
        models.load_weights(models.create_model("resnet18", 2, pretrained=False), path)
    assert "weights_only" not in str(info.value) and "never loaded" in str(info.value)


def test_shown_label_follows_the_language_of_the_run_not_of_the_cache():
    """One cached model serves tabs in every language: its label is made where it is shown."""
    from torch import nn

    from core.i18n import set_language
    from core.nets.models import LoadedModel
    from core.store.records import RunConfig, StageConfig
    from core.store.runs import RunModel
    from tests.factories import run_record

    imagenet = LoadedModel(nn.Sequential(), "mobilenet_v2", [], "ImageNet-pretrained mobilenet_v2", "imagenet")
    untitled = LoadedModel(nn.Sequential(), "resnet34", [], "run abc (resnet34)", "run", run_id="abc")
    titled = LoadedModel(nn.Sequential(), "resnet34", [], "my pets", "run", run_id="abc")
    config = RunConfig(dataset="d", img_size=64, stages=(StageConfig(2, 3e-3, fast=True),))
    trained = RunModel(nn.Sequential(), "mobilenet_v2", ["a", "b"], config.title(), "run", run_id="r",
                       record=run_record(config))  # fmt: skip
    try:
        set_language("zh")
        assert imagenet.shown_label() == "ImageNet 预训练的 mobilenet_v2"
        assert untitled.shown_label() == "模型 abc（resnet34）"
        assert titled.shown_label() == "my pets"  # a title someone typed stays as typed
        # issue 19: the trainer's title stayed English on Prediction and in the Layers captions
        assert trained.shown_label() == "mobilenet_v2，64 像素：冻结训练 2 轮（缓存特征，学习率 3e-03）"
        set_language("en")
        assert imagenet.shown_label() == "ImageNet-pretrained mobilenet_v2"
        assert untitled.shown_label() == "run abc (resnet34)"
        assert trained.shown_label() == "mobilenet_v2 64px: 2 ep frozen, cached features @ 3e-03"
    finally:
        set_language("en")
