"""capture_activations and the stage helpers built on it: exact shapes, no hooks left behind."""

import numpy as np
import pytest
import torch
from torch import nn

from core.inside.activations import (
    NothingCaptured,
    capture_activations,
    capture_stages,
    channel_order,
    feature_grid,
    feature_grid_figure,
    hook_count,
    stage_shapes,
    truncate,
)


def tiny_net() -> nn.Sequential:
    torch.manual_seed(0)
    body = nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True)),
        nn.Conv2d(4, 6, 3, stride=2, padding=1),
        nn.ReLU(inplace=True),
    )
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2))
    return nn.Sequential(body, head).eval()


def test_no_hook_left_after_success_and_after_exception():
    model = tiny_net()
    x = torch.randn(2, 3, 16, 16)
    with capture_activations(model, {"a": model[0][1]}) as acts:
        assert hook_count(model) == 1
        model(x)
    assert acts["a"].shape == (2, 6, 8, 8)
    assert hook_count(model) == 0
    with pytest.raises(RuntimeError, match="boom"), capture_activations(model, [model[0][0][0]]):
        model(x)
        raise RuntimeError("boom")
    assert hook_count(model) == 0
    with pytest.raises(NothingCaptured), capture_activations(model, [model[0][1]]):
        pass
    assert hook_count(model) == 0


def test_captured_copy_survives_inplace_relu():
    model = tiny_net()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad(), capture_activations(model, {"conv": model[0][1]}) as acts:
        model(x)
    # the ReLU after the conv is inplace: the captured tensor must still hold negative values
    assert acts["conv"].min() < 0


def test_capture_stages_matches_truncated_forward():
    model = tiny_net()
    x = torch.randn(2, 3, 16, 16)
    acts, logits = capture_stages(model, x, ["0.0", "0.2"])
    assert logits.shape == (2, 2)
    with torch.no_grad():
        torch.testing.assert_close(acts["0.2"], truncate(model, "0.2")(x))
        torch.testing.assert_close(acts["0.0"], truncate(model, "0.0")(x))
        torch.testing.assert_close(acts["0.0"], model[0][0](x))  # '0.0' is the first block, whole
    assert hook_count(model) == 0


def test_truncate_nested_paths_and_errors():
    model = tiny_net()
    cut = truncate(model, "0.0.0")  # body[0][0]: the first conv only
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(cut(x), model[0][0][0](x))
    with pytest.raises(ValueError):
        truncate(model, "0.9")
    with pytest.raises(ValueError):
        truncate(model, "1.2.0")  # Flatten is not a Sequential


def test_stage_shapes_tiny_and_mobilenet():
    assert stage_shapes(tiny_net(), ["0.0", "0.2"], size=16) == {"0.0": (1, 4, 16, 16), "0.2": (1, 6, 8, 8)}
    from core.nets.models import ARCHS, imagenet_classifier

    model = imagenet_classifier("mobilenet_v2", pretrained=False).eval()
    shapes = stage_shapes(model, [p for _, p in ARCHS["mobilenet_v2"].stages], size=64)
    assert shapes["0.0.0"] == (1, 32, 32, 32)
    assert shapes["0.0.18"] == (1, 1280, 2, 2)
    assert hook_count(model) == 0


def test_channel_order_and_grid():
    act = np.zeros((3, 2, 2), dtype=np.float32)
    act[0] = 1.0
    act[1] = [[0, 4], [0, 4]]  # mean 2
    act[2] = -1.0
    assert channel_order(act).tolist() == [1, 0, 2]
    grid = feature_grid(act, [1, 0], ncols=2)
    assert grid.shape == (2, 5)  # two 2x2 tiles and a one-pixel NaN gap
    assert np.isnan(grid[:, 2]).all()
    assert grid[0, 0] == 0 and grid[0, 1] == 1  # channel 1 scaled to [0, 1]
    assert (grid[:, 3:] == 0).all()  # a constant channel is drawn flat
    fig = feature_grid_figure(act, [1, 0, 2], ncols=2)
    assert fig.data[0].z.shape == (5, 5)


def test_private_copy_drops_hooks_and_keeps_weights():
    from core.inside.activations import private_copy

    model = tiny_net()
    x = torch.randn(1, 3, 16, 16)
    with capture_activations(model, [model[0][1]]) as acts:
        clone = private_copy(model)
        with torch.no_grad():
            out = clone(x)  # must not fire the shared model's hook
        assert hook_count(clone) == 0 and "0" not in acts
        model(x)
    with torch.no_grad():
        torch.testing.assert_close(out, model(x))
    assert clone[0][1].weight.data_ptr() != model[0][1].weight.data_ptr()


def test_hooks_ignore_forward_passes_from_other_threads():
    """A shared model's hooks must not record another session's (thread's) forward pass."""
    import threading

    from core.inside.activations import capture_activations

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    mine, theirs = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    with torch.no_grad(), capture_activations(model, {"conv": model[0]}) as acts:
        model(mine)
        other = threading.Thread(target=lambda: model(theirs))
        other.start()
        other.join()
    torch.testing.assert_close(acts["conv"], model[0](mine).detach())
