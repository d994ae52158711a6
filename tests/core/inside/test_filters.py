"""First-conv filters: shapes, the picture grid and the change measure."""

import numpy as np
import pytest
import torch
from torch import nn

from core.inside.filters import conv_filters, filter_change, filter_grid


def test_filters_grid_and_change():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Sequential(nn.Conv2d(3, 5, 3), nn.ReLU()))
    f = conv_filters(model, "0.0")
    assert f.shape == (5, 3, 3, 3)
    np.testing.assert_allclose(f[2, 0, 1], model[0][0].weight[2, :, 0, 1].detach().numpy())
    img = filter_grid(f, ncols=4, scale=2, gap=1)
    assert img.size == (4 * 7 + 1, 2 * 7 + 1)
    arr = np.asarray(img)
    assert arr[1:7, 1:7].min() == 0 and arr[1:7, 1:7].max() == 255  # each filter stretched to the full range
    np.testing.assert_allclose(filter_change(f, f), 0)
    np.testing.assert_allclose(filter_change(f, 2 * f), 1, rtol=1e-6)
    with pytest.raises(ValueError):
        conv_filters(model, "0.1")
    with pytest.raises(ValueError):
        filter_change(f, f[:2])
