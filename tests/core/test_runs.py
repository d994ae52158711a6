"""Runs on disk: stable ids sensitive to every field, atomic folders, skipping broken ones, the lock."""

import json
import subprocess
import sys
import threading
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest

from core import runs
from core.models import RECORD_FILE, WEIGHTS_FILE

ROOT = Path(__file__).resolve().parents[2]
STAGE = runs.StageConfig(epochs=2, lr_max=1e-3)
CONFIG = runs.RunConfig(dataset="abc", stages=(STAGE,))
CHANGED = {
    str: "other",
    bool: None,  # flipped below
    int: 7,
    float: 0.123,
}


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, tuple):
        return (*value, STAGE)
    if value is None:
        return 1e-6
    return CHANGED[type(value)]


def test_run_id_is_stable_across_processes():
    code = (
        "from core import runs; print(runs.run_id(runs.RunConfig(dataset='abc', "
        "stages=(runs.StageConfig(epochs=2, lr_max=1e-3),))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == runs.run_id(CONFIG) == CONFIG.run_id
    assert runs.run_id(runs.config_from_dict(json.loads(json.dumps(runs.config_as_dict(CONFIG))))) == CONFIG.run_id


def test_run_id_changes_with_every_config_and_stage_field():
    seen = {CONFIG.run_id}
    for f in fields(runs.RunConfig):
        other = replace(CONFIG, **{f.name: _changed(getattr(CONFIG, f.name))})
        assert other.run_id not in seen, f.name
        seen.add(other.run_id)
    for f in fields(runs.StageConfig):
        other = replace(CONFIG, stages=(replace(STAGE, **{f.name: _changed(getattr(STAGE, f.name))}),))
        assert other.run_id not in seen, f.name
        seen.add(other.run_id)


def _record(**extra):
    return {"arch": "mobilenet_v2", "classes": ["a", "b"], "img_size": 64, "title": "t", "config": {}, **extra}


def test_write_and_list_runs_skips_broken_folders(tmp_path):
    preds = {"probs": np.full((3, 2), 0.5, np.float32), "targets": np.array([0, 1, 1])}
    runs.write_run(tmp_path, "good", b"weights", _record(created=2), preds)
    (tmp_path / "no-weights").mkdir()
    (tmp_path / "no-weights" / RECORD_FILE).write_text(json.dumps(_record()))
    (tmp_path / "bad-json").mkdir()
    (tmp_path / "bad-json" / WEIGHTS_FILE).write_bytes(b"x")
    (tmp_path / "bad-json" / RECORD_FILE).write_text("{not json")
    (tmp_path / "no-classes").mkdir()
    (tmp_path / "no-classes" / WEIGHTS_FILE).write_bytes(b"x")
    (tmp_path / "no-classes" / RECORD_FILE).write_text(json.dumps({"arch": "x"}))
    (tmp_path / ".tmp-half-written").mkdir()

    found, warnings = runs.list_runs(tmp_path)
    assert [r.run_id for r in found] == ["good"]
    assert sorted(w.split(":")[0] for w in warnings) == [
        "Skipped run folder bad-json",
        "Skipped run folder no-classes",
        "Skipped run folder no-weights",
    ]
    loaded = runs.load_preds(found[0].path)
    np.testing.assert_array_equal(loaded["targets"], preds["targets"])
    assert sorted(p.name for p in found[0].path.iterdir()) == sorted([WEIGHTS_FILE, RECORD_FILE, runs.PREDS_FILE])


def test_failed_write_leaves_nothing_and_retrain_replaces(tmp_path, monkeypatch):
    preds = {"probs": np.zeros((1, 2), np.float32), "targets": np.zeros(1, np.int64)}
    runs.write_run(tmp_path, "r1", b"old", _record(), preds)

    def broken(path, obj):
        raise OSError("disk full")

    monkeypatch.setattr(runs, "atomic_write_json", broken)
    with pytest.raises(OSError):
        runs.write_run(tmp_path, "r2", b"w", _record(), preds)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r1"]  # no half-written r2, no temp folder
    monkeypatch.undo()
    runs.write_run(tmp_path, "r1", b"new", _record(), preds)
    assert (tmp_path / "r1" / WEIGHTS_FILE).read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r1"]
    runs.delete_run(tmp_path / "r1")
    assert list(tmp_path.iterdir()) == []


def test_lock_serialises_two_trainings(tmp_path):
    order: list[str] = []
    holding = threading.Event()

    def first():
        with runs.training_lock(tmp_path):
            holding.set()
            order.append("first start")
            time.sleep(0.3)
            order.append("first end")

    thread = threading.Thread(target=first)
    thread.start()
    holding.wait(5)
    assert runs.training_running(tmp_path)
    runs.write_progress(tmp_path, {"title": "resnet34 run"})
    with pytest.raises(runs.TrainingBusy, match="resnet34 run"), runs.training_lock(tmp_path):
        pass
    with runs.training_lock(tmp_path, wait=True):  # blocks until the first one is done
        order.append("second start")
    thread.join()
    assert order == ["first start", "first end", "second start"]
    assert not runs.training_running(tmp_path)


def test_validate_rejects_untrainable_configs():
    with pytest.raises(runs.ConfigError):
        runs.validate(replace(CONFIG, stages=()))
    with pytest.raises(runs.ConfigError):
        runs.validate(replace(CONFIG, bs=1))
    with pytest.raises(runs.ConfigError):
        runs.validate(replace(CONFIG, stages=(replace(STAGE, lr_min=1e-2),)))  # lo > hi
    runs.validate(CONFIG)
    assert CONFIG.parent() is None
    two = replace(CONFIG, stages=(STAGE, replace(STAGE, unfreeze=True)))
    assert two.parent() == CONFIG and "unfrozen" in two.title()
