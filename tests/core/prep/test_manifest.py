"""The bundle format: which library versions a bundle made elsewhere may be imported with."""

from core.prep.manifest import incompatibility


def test_version_rules():
    local = {"torch": "2.14.1", "torchvision": "0.29.1", "fastai": "2.8.12"}
    assert incompatibility({**local, "torch": "2.13.0+cu128", "fastai": "2.8.1"}, local) is None
    assert "torch 2.15.0" in incompatibility({**local, "torch": "2.15.0"}, local)
    assert "fastai 2.7.0" in incompatibility({**local, "fastai": "2.7.0"}, local)
    assert "which torchvision" in incompatibility({"torch": "2.14.1", "fastai": "2.8.12"}, local)
