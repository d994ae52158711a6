"""Shared setup for page tests: stored runs exactly as the trainer writes them (tests/factories.py)."""

from pathlib import Path

from core.settings import sub_dir
from core.store.records import RunConfig
from core.train.lesson import WORKSHOP, RunRole
from tests.factories import preds, run_record, store_run

CLASSES = ["Bengal", "Persian", "Siamese", "beagle", "boxer", "pug"]


def stored_run(config: RunConfig, epochs: int = 2, dataset: str = "pets", runs_dir: Path | None = None) -> str:
    """A complete run folder for exactly `config` (as train_run stores it), so the page finds it trained."""
    record = run_record(config, CLASSES, epochs, dataset=dataset, created=2.0, timings={"stage0_train": 6.0})
    return store_run(runs_dir or sub_dir("runs"), record, predictions=preds(len(CLASSES)))


def training_page_config(fingerprint: str) -> RunConfig:
    """The Training page's stage-1 config with its default widgets (what `find_run` looks up on first open)."""
    return WORKSHOP.config(RunRole.FROZEN, fingerprint)
