"""Runs on disk: stable ids sensitive to every field, atomic folders, skipping broken ones, the lock."""

import dataclasses
import json
import subprocess
import sys
import threading
import time
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np
import pytest

from core import records, repair, runs, training_lock
from core.models import RECORD_FILE, WEIGHTS_FILE

ROOT = Path(__file__).resolve().parents[2]
STAGE = records.StageConfig(epochs=2, lr_max=1e-3)
CONFIG = records.RunConfig(dataset="abc", stages=(STAGE,))
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
        "from core import records; print(records.run_id(records.RunConfig(dataset='abc', "
        "stages=(records.StageConfig(epochs=2, lr_max=1e-3),))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == records.run_id(CONFIG) == CONFIG.run_id
    assert (
        records.run_id(records.config_from_dict(json.loads(json.dumps(records.config_as_dict(CONFIG)))))
        == CONFIG.run_id
    )


def test_run_id_changes_with_every_config_and_stage_field():
    seen = {CONFIG.run_id}
    for f in fields(records.RunConfig):
        other = replace(CONFIG, **{f.name: _changed(getattr(CONFIG, f.name))})
        assert other.run_id not in seen, f.name
        seen.add(other.run_id)
    for f in fields(records.StageConfig):
        other = replace(CONFIG, stages=(replace(STAGE, **{f.name: _changed(getattr(STAGE, f.name))}),))
        assert other.run_id not in seen, f.name
        seen.add(other.run_id)


def _record(**extra):
    return {"arch": "mobilenet_v2", "classes": ["a", "b"], "img_size": 64, "title": "t", "config": asdict(CONFIG),
            **extra}  # fmt: skip


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
        with training_lock.training_lock(tmp_path):
            holding.set()
            order.append("first start")
            time.sleep(0.3)
            order.append("first end")

    thread = threading.Thread(target=first)
    thread.start()
    holding.wait(5)
    assert training_lock.training_running(tmp_path)
    training_lock.write_progress(tmp_path, {"title": "resnet34 run"})
    with pytest.raises(training_lock.TrainingBusy, match="resnet34 run"), training_lock.training_lock(tmp_path):
        pass
    with training_lock.training_lock(tmp_path, wait=True):  # blocks until the first one is done
        order.append("second start")
    thread.join()
    assert order == ["first start", "first end", "second start"]
    assert not training_lock.training_running(tmp_path)


def test_validate_rejects_untrainable_configs():
    with pytest.raises(records.ConfigError):
        records.validate(replace(CONFIG, stages=()))
    with pytest.raises(records.ConfigError):
        records.validate(replace(CONFIG, bs=1))
    with pytest.raises(records.ConfigError):
        records.validate(replace(CONFIG, stages=(replace(STAGE, lr_min=1e-2),)))  # lo > hi
    records.validate(CONFIG)
    assert CONFIG.parent() is None
    two = replace(CONFIG, stages=(STAGE, replace(STAGE, unfreeze=True)))
    assert two.parent() == CONFIG and "unfrozen" in two.title()


def _write_raw(runs_dir: Path, name: str, record) -> Path:
    folder = runs_dir / name
    folder.mkdir(parents=True)
    (folder / WEIGHTS_FILE).write_bytes(b"w")
    (folder / RECORD_FILE).write_text(json.dumps(record))
    return folder


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"created": "yesterday"}, "created"),  # the review: ValueError in the runs sort, every page down
        ({"epochs": "oops"}, "epochs"),  # the review: AttributeError
        ({"classes": 5}, "classes"),  # the review: Interpretation raised
        ({"classes": []}, "classes"),
        ({"img_size": "64"}, "img_size"),
        ({"img_size": True}, "img_size"),
        ({"title": None}, "title"),
        ({"epochs": [{"stage": 0, "epoch": "first"}]}, "epoch"),
        ({"timings": {"setup": "slow"}}, "timings"),
        ({"config": {"dataset": 3}}, "dataset"),
        ({"config": {"dataset": "x", "stages": [{"epochs": 1.5, "lr_max": 1e-3}]}}, "epochs"),
        ({"arch": "not_a_net"}, "arch"),
        ({"created": float("nan")}, "created"),
    ],
)
def test_wrong_types_make_a_skipped_run_with_one_warning(tmp_path, change, field):
    preds = {"probs": np.full((2, 2), 0.5, np.float32), "targets": np.array([0, 1])}
    runs.write_run(tmp_path, "good", b"weights", _record(created=2), preds)
    _write_raw(tmp_path, "bad", _record(**change))
    found, warnings = runs.list_runs(tmp_path)
    assert [r.run_id for r in found] == ["good"]
    assert len(warnings) == 1 and warnings[0].startswith("Skipped run folder bad:") and field in warnings[0]
    assert str(tmp_path) not in warnings[0]
    with pytest.raises(records.RecordError):
        records.check_run(tmp_path / "bad")


def test_record_round_trip_keeps_layout_and_unknown_keys(tmp_path):
    raw = _record(
        created=5,
        epochs=[{"stage": 0, "epoch": 0, "train_loss": 1, "valid_loss": 0.5, "error_rate": 0.25, "seconds": 3,
                 "accuracy": 0.75}],
        timings={"setup": 1}, trained_stages=[0], valid_paths=["a.jpg"], device="cpu", precision="bf16",
        versions={"torch": "2"}, lr_finder={"lrs": [1e-3]}, bn_note="note", future_field={"kept": True},
        dataset={"name": "pets", "root": "/r", "fingerprint": "f"},
    )  # fmt: skip
    record = records.RunRecord.from_json(raw)
    assert record.config == CONFIG and record.classes == ("a", "b") and record.created == 5.0
    assert record.epochs[0].train_loss == 1.0 and record.epochs[0].metrics == {"accuracy": 0.75}
    assert record.error_rate == 0.25 and record.notes == "note" and record.dataset.name == "pets"
    assert record.extra == {"future_field": {"kept": True}} and record.precision == "bf16"
    again = json.loads(json.dumps(record.to_json()))
    assert records.RunRecord.from_json(again) == record
    assert set(again) == set(raw) and again["bn_note"] == "note"  # the run.json layout is unchanged
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.title = "x"


def test_write_run_refuses_invalid_records_and_preds(tmp_path):
    good = {"probs": np.full((2, 2), 0.5, np.float32), "targets": np.array([0, 1])}
    with pytest.raises(records.RecordError):
        runs.write_run(tmp_path, "r", b"w", _record(created="now"), good)
    with pytest.raises(records.RecordError, match="columns"):
        runs.write_run(tmp_path, "r", b"w", _record(), {"probs": np.zeros((2, 3), np.float32), "targets": [0, 1]})
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"probs": np.array([{"x": 1}, None], dtype=object), "targets": np.array([0, 1])}, "Python objects"),
        ({"probs": np.zeros((2, 3), np.float32), "targets": np.array([0, 1])}, "3 columns for 2"),
        ({"probs": np.zeros(2, np.float32), "targets": np.array([0, 1])}, "2-D"),
        ({"probs": np.zeros((2, 2), np.float32), "targets": np.array([0.0, 1.0])}, "integer"),
        ({"probs": np.zeros((2, 2), np.float32), "targets": np.array([0, 5])}, "outside"),
        ({"probs": np.zeros((2, 2), np.float32), "targets": np.array([0])}, "1 targets"),
        ({"probs": np.zeros((2, 2), np.float32)}, "lacks targets"),
    ],
)
def test_bad_preds_raise_a_record_error(tmp_path, arrays, match):
    folder = tmp_path / "r"
    folder.mkdir()
    np.savez(folder / runs.PREDS_FILE, **arrays)
    with pytest.raises(records.RecordError, match=match):
        runs.load_preds(folder, n_classes=2)


def test_damaged_preds_file(tmp_path):
    (tmp_path / runs.PREDS_FILE).write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(records.RecordError):
        runs.load_preds(tmp_path)


def _killed_swap(runs_dir: Path, new_complete: bool) -> None:
    """The state 'Retrain anyway' leaves when killed between its two renames."""
    preds = {"probs": np.full((2, 2), 0.5, np.float32), "targets": np.array([0, 1])}
    runs.write_run(runs_dir, "r1", b"old", _record(created=1), preds)
    (runs_dir / "r1").rename(runs_dir / ".old-r1-aaaaaaaa")
    tmp = runs_dir / ".tmp-r1-bbbbbbbb"
    runs.write_run(runs_dir, "staging", b"new", _record(created=2), preds).rename(tmp)
    if not new_complete:
        (tmp / RECORD_FILE).unlink()


@pytest.mark.parametrize(("new_complete", "weights"), [(True, b"new"), (False, b"old")])
def test_interrupted_retrain_is_rolled_forward_or_back(tmp_path, new_complete, weights):
    _killed_swap(tmp_path, new_complete)
    found, warnings = runs.list_runs(tmp_path)  # listing repairs the registry
    assert [r.run_id for r in found] == ["r1"] and not warnings
    assert (tmp_path / "r1" / WEIGHTS_FILE).read_bytes() == weights


def test_leftovers_of_killed_jobs_are_removed_when_old_and_unlocked(tmp_path):
    for name in (".work-abc", ".tmp-r9-cccccccc", ".lrfind-xyz", ".del-r8-dddddddd"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.pt").write_bytes(b"x" * 100)
    training_lock.write_progress(tmp_path, {"title": "killed run"})
    now = time.time()
    assert repair.repair_runs(tmp_path, max_age=600, now=now) == [
        "Removed the progress file of a training that was stopped."
    ]  # young leftovers may belong to a live job: kept
    assert (tmp_path / ".work-abc").exists() and training_lock.read_progress(tmp_path) is None

    holding, release = threading.Event(), threading.Event()

    def training():
        with training_lock.training_lock(tmp_path):
            holding.set()
            release.wait(5)

    thread = threading.Thread(target=training)
    thread.start()
    holding.wait(5)
    assert repair.repair_runs(tmp_path, max_age=600, now=now + 3600) == []  # a live training: nothing touched
    release.set()
    thread.join()
    assert (tmp_path / ".work-abc").exists()

    done = repair.repair_runs(tmp_path, max_age=600, now=now + 3600)
    assert len(done) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [training_lock.LOCK_FILE]


def test_fast_runs_from_before_batchnorm_adaptation_are_not_reused(tmp_path):
    """A fast stage-1 run stored under the old id (ImageNet BatchNorm statistics) is not found again."""
    from core.records import RunConfig, StageConfig, run_id
    from core.storage import stable_hash

    fast = RunConfig(dataset="d", stages=(StageConfig(epochs=1, lr_max=1e-3, fast=True),))
    plain = RunConfig(dataset="d", stages=(StageConfig(epochs=1, lr_max=1e-3),))
    assert run_id(fast) != stable_hash(fast)  # the id before FAST_PATH_VERSION
    assert run_id(plain) == stable_hash(plain)  # runs without a fast stage keep their ids
    assert run_id(fast) == run_id(RunConfig(dataset="d", stages=(StageConfig(epochs=1, lr_max=1e-3, fast=True),)))
