"""Receptive fields from autograd, checked against hand-computed ones."""

import numpy as np
import torch
from torch import nn

from core.inside.receptive_field import ReceptiveField, crop_field, receptive_field


class Residual(nn.Module):
    """x + f(x), with a strided 1x1 shortcut when f downsamples (like a resnet block)."""

    def __init__(self, f: nn.Module, shortcut: nn.Module) -> None:
        super().__init__()
        self.f, self.shortcut = f, shortcut

    def forward(self, x):
        return self.f(x) + self.shortcut(x)


def hand_net() -> nn.Sequential:
    body = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),  # rf 3, jump 1
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),  # rf 4, jump 2
        nn.Conv2d(4, 4, 3, stride=2, padding=1),  # rf 4 + 2*2 = 8, jump 4
        nn.BatchNorm2d(4),
        nn.ReLU6(),
        Residual(  # main branch: two 3x3 convs -> rf 8 + 2*4 + 2*8 = 32, jump 8; shortcut sees less
            nn.Sequential(nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1)),
            nn.Conv2d(4, 4, 1, stride=2),
        ),
    )
    return nn.Sequential(body, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))


def test_hand_net_exact():
    net = hand_net()
    assert receptive_field(net, "0.0", size=64) == ReceptiveField(3, 1.0, 0.0)
    assert receptive_field(net, "0.2", size=64) == ReceptiveField(4, 2.0, 0.5)
    assert receptive_field(net, "0.5", size=64) == ReceptiveField(8, 4.0, 0.5)
    assert receptive_field(net, "0.6", size=64) == ReceptiveField(32, 8.0, 0.5)


def test_clipped_centre_uses_edges():
    # at 32 px the last stage's centre unit (rf 32) touches the border: the edge method must agree
    assert receptive_field(hand_net(), "0.6", size=32) == ReceptiveField(32, 8.0, 0.5)


def test_model_untouched():
    net = hand_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    receptive_field(net, "0.6", size=32)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert isinstance(net[0][5], nn.ReLU6)


def test_resnet18_known_values():
    from core.nets.models import imagenet_classifier

    net = imagenet_classifier("resnet18", pretrained=False)
    assert [receptive_field(net, p).size for p in ("0.2", "0.5", "0.7")] == [7, 99, 435]
    assert receptive_field(net, "0.7").jump == 32.0


def test_box_and_crop():
    rf = ReceptiveField(4, 2.0, 0.5)
    assert rf.box(0, 0) == (-1, -1, 3, 3)
    assert rf.box(1, 2) == (1, 3, 5, 7)
    img = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)
    crop = crop_field(img, rf, 0, 0)
    assert crop.shape == (4, 4, 3)
    assert (crop[0] == 128).all() and (crop[:, 0] == 128).all()  # outside the image is grey
    assert (crop[1:, 1:] == img[0:3, 0:3]).all()


def test_several_stages_at_once():
    from core.inside.receptive_field import receptive_fields

    net = hand_net()
    fields = receptive_fields(net, ["0.0", "0.5", "0.6"], size=64)
    assert [f.size for f in fields.values()] == [3, 8, 32]
