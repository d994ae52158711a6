"""Shared setup for page tests: stored runs exactly as the trainer writes them."""

from pathlib import Path

import numpy as np

from core.settings import sub_dir
from core.store import runs
from core.store.records import RunConfig, config_as_dict
from core.train.lesson import WORKSHOP, RunRole

CLASSES = ["Bengal", "Persian", "Siamese", "beagle", "boxer", "pug"]


def stored_run(config: RunConfig, epochs: int = 2, dataset: str = "pets", runs_dir: Path | None = None) -> str:
    """A complete run folder for exactly `config` (as train_run stores it), so the page finds it trained."""
    classes = CLASSES
    rows = [
        {"stage": 0, "epoch": e, "train_loss": 1.2 - 0.2 * e, "valid_loss": 1.0 - 0.1 * e, "error_rate": 0.439 - 0.1 * e,
         "seconds": 3.0}
        for e in range(epochs)
    ]  # fmt: skip
    record = {"arch": config.arch, "classes": classes, "img_size": config.img_size, "title": config.title(),
              "config": config_as_dict(config), "epochs": rows, "timings": {"stage0_train": 6.0},
              "created": 2.0, "device": "cpu", "dataset": {"name": dataset, "fingerprint": config.dataset}}  # fmt: skip
    preds = {"probs": np.full((2, 6), 1 / 6, np.float32), "targets": np.array([0, 1])}
    runs.write_run(runs_dir or sub_dir("runs"), config.run_id, b"weights", record, preds)
    return config.run_id


def training_page_config(fingerprint: str) -> RunConfig:
    """The Training page's stage-1 config with its default widgets (what `find_run` looks up on first open)."""
    return WORKSHOP.config(RunRole.FROZEN, fingerprint)
