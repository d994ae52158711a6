"""Deconvnet and guided backprop: exact on a hand-set conv; the shared model is never modified."""

import numpy as np
import pytest
import torch
from torch import nn

from core.inside.activations import hook_count
from core.inside.projection import project, projectable_copy, signal_image, strongest_unit


def hand_net() -> nn.Sequential:
    conv = nn.Conv2d(3, 2, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.arange(2 * 3 * 3 * 3, dtype=torch.float32).view(2, 3, 3, 3) / 10 - 1)
    body = nn.Sequential(conv, nn.ReLU(inplace=True), nn.Conv2d(2, 2, 1), nn.ReLU6(inplace=True))
    return nn.Sequential(body, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())).eval()


@pytest.mark.parametrize("method", ["deconvnet", "guided"])
def test_single_conv_projects_its_kernel(method):
    model = hand_net()
    x = torch.zeros(1, 3, 8, 8)
    x[0, :, 3:6, 3:6] = 1.0  # the unit at (4, 4) sees exactly this square
    net = projectable_copy(model, "0.1")
    (y, xx), value = strongest_unit(net, x, 1)
    assert value > 0
    signal = project(net, x, 1, method, (4, 4))  # (8, 8, 3)
    expected = np.zeros((8, 8, 3), dtype=np.float32)
    expected[3:6, 3:6] = model[0][0].weight[1].detach().permute(1, 2, 0).numpy()  # the kernel itself
    np.testing.assert_allclose(signal, expected, atol=1e-6)


def test_copy_leaves_shared_model_alone():
    model = hand_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    net = projectable_copy(model, "0.3")
    assert isinstance(model[0][3], nn.ReLU6) and model[0][1].inplace  # original untouched
    assert not any(isinstance(m, nn.ReLU6) for m in net.modules())
    assert all(not m.inplace for m in net.modules() if isinstance(m, nn.ReLU))
    torch.manual_seed(0)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(net(x), model[0](x))  # same forward after the rewrite
    pos, _ = strongest_unit(net, x, 0)
    for method in ("deconvnet", "guided"):
        assert project(net, x, 0, method, pos).shape == (8, 8, 3)
    assert hook_count(net) == 0 and hook_count(model) == 0
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_saturated_relu6_still_projects():
    model = hand_net()
    with torch.no_grad():
        model[0][2].weight.fill_(10.0)  # drive the ReLU6 into saturation
    net = projectable_copy(model, "0.3")
    x = torch.ones(1, 3, 8, 8)
    pos, value = strongest_unit(net, x, 0)
    assert value == pytest.approx(6.0)
    assert np.abs(project(net, x, 0, "deconvnet", pos)).max() > 0


def test_signal_image_and_mobilenet():
    img = signal_image(np.zeros((4, 4, 3)))
    assert np.asarray(img).max() == 128 == np.asarray(img).min()
    from core.nets.models import imagenet_classifier

    torch.manual_seed(0)
    model = imagenet_classifier("mobilenet_v2", pretrained=False).eval()
    net = projectable_copy(model, "0.0.3")
    x = torch.randn(1, 3, 64, 64)
    pos, _ = strongest_unit(net, x, 0)
    out = project(net, x, 0, "guided", pos)
    assert out.shape == (64, 64, 3)
    with pytest.raises(ValueError):
        project(net, x, 0, "saliency", pos)
