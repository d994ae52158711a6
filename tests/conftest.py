"""Shared fixtures: every test gets its own data folder; nothing touches ~/.petlab or the network."""

import pytest


@pytest.fixture(autouse=True)
def data_folder(tmp_path_factory, monkeypatch):
    """A fresh PETLAB_DATA per test, with the offline weights reachable from its TORCH_HOME."""
    folder = tmp_path_factory.mktemp("petlab-data")
    monkeypatch.setenv("PETLAB_DATA", str(folder))
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.delenv("PETLAB_DATASET", raising=False)
    monkeypatch.delenv("PETLAB_FOLDERS", raising=False)
    return folder


@pytest.fixture(scope="session")
def pets_like(tmp_path_factory):
    """A small generated Pets-shaped folder (6 classes, 3 cat + 3 dog breeds, 10 images each)."""
    from core.data.synthetic import make_pets_like

    return make_pets_like(tmp_path_factory.mktemp("pets-like") / "images", n_per_class=10)


@pytest.fixture(params=["this-machine", "bf16"])
def machine_precision(request, monkeypatch):
    """The test as this machine runs it (PETLAB_PRECISION as set, else the auto rule), then with bf16 forced.

    What a CPU with native bf16 or a GPU would do differently (training steps under bf16 autocast)
    is caught on a machine without it: issue 17, where such a CPU failed tests that passed elsewhere.
    """
    if request.param != "this-machine":
        monkeypatch.setenv("PETLAB_PRECISION", request.param)
    return request.param
