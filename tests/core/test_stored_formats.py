"""What main 4085d2a stored still loads, through the one typed parser, and is written back the same.

tests/fixtures/main_4085d2a holds the files Pet Lab wrote before its records and events were typed (see
its README): a run folder, training events and the progress file, job records and their index, a patch
index, the class settings, the worker's heartbeat and a bundle's manifest. Each is read as the app reads
it (typed: enums, EpochRows, LRFinderResults, no dicts) and written back to the same JSON.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.inside import patches
from core.nets.models import WEIGHTS_FILE
from core.prep.manifest import BundleRun, Manifest
from core.settings import class_file
from core.store import records, runs, training_lock
from core.store.records import EpochRow, EventKind, LRFinderResult, RunConfig, TrainEvent
from core.teach import classroom, job_records, worker
from core.teach.job_records import JobKind, JobStatus

MAIN = Path(__file__).resolve().parents[1] / "fixtures" / "main_4085d2a"


def stored(name: str):
    return json.loads((MAIN / name).read_text())


def test_a_run_folder_written_by_main_loads_typed_and_is_written_back_the_same(tmp_path):
    folder = tmp_path / "runs" / "old"
    shutil.copytree(MAIN / "run", folder)
    (folder / WEIGHTS_FILE).write_bytes(b"weights")  # the fixture leaves out the 9 MB of weights
    record = records.check_run(folder)
    assert isinstance(record.config, RunConfig) and len(record.config.stages) == 2 and record.trained_stages == (1,)
    assert all(isinstance(e, EpochRow) for e in record.epochs) and [e.stage for e in record.epochs] == [0, 0, 1]
    assert isinstance(record.lr_finder, LRFinderResult) and record.lr_finder.stage == "unfrozen"
    assert "BatchNorm" in record.notes and record.dataset.spec() is not None
    assert record.to_json() == stored("run/run.json")  # the layout main wrote, key for key
    preds = runs.load_preds(folder, len(record.classes))
    assert preds.probs.dtype == np.float32 and preds.targets.dtype == np.int64
    assert preds.probs.shape == (len(record.valid_paths), len(record.classes))
    assert preds.error_rate == pytest.approx(record.error_rate, abs=1e-6)  # the last epoch is the stored pass
    runs.write_run(tmp_path / "again", "old", b"weights", record, preds)
    assert json.loads((tmp_path / "again" / "old" / "run.json").read_text()) == stored("run/run.json")
    again = runs.load_preds(tmp_path / "again" / "old")
    np.testing.assert_array_equal(again.probs, preds.probs)
    np.testing.assert_array_equal(again.targets, preds.targets)


def test_training_events_and_the_progress_file_of_main_parse_typed():
    events = [TrainEvent.from_json(e) for e in stored("events.json")]
    assert {e.kind for e in events} == set(EventKind) - {EventKind.INDEX}  # an index's events come from a job
    for raw, event in zip(stored("events.json"), events, strict=True):
        written = records.to_json(event)
        assert {k: written[k] for k in raw} == raw  # every key main sent, same value; the others at defaults
        assert TrainEvent.from_json(written) == event
    assert all(isinstance(e.row, EpochRow) for e in events if e.kind == EventKind.EPOCH)
    progress = records.parse_dataclass(training_lock.TrainProgress, stored("progress.json"), "progress")
    assert progress.status == training_lock.ProgressStatus.TRAINING and isinstance(progress.config, RunConfig)
    assert progress.shown_title() == progress.config.title() == progress.title
    assert progress.epochs[0].epoch == 0 and progress.last.kind == EventKind.EPOCH
    assert records.parse_dataclass(training_lock.TrainProgress, records.to_json(progress), "again") == progress


def test_job_records_and_index_written_by_main_load_typed_and_are_written_back_the_same(data_folder):
    folder = job_records.jobs_dir(data_folder)
    for path in (MAIN / "jobs").iterdir():
        shutil.copy(path, folder / path.name)
    assert job_records._read_index(data_folder) is not None  # main's index reads as it is (not rebuilt)
    rows = job_records.index(data_folder)
    assert json.loads((folder / job_records.INDEX_FILE).read_text()) == stored("jobs/index.json")
    found = job_records.read_all(data_folder)
    assert len(found) == 5 and job_records.quarantined(data_folder) == []
    kinds = {(j.kind, j.status) for j in found}
    assert kinds == {(JobKind.TRAIN, JobStatus.DONE), (JobKind.LR_FIND, JobStatus.DONE), (JobKind.TRAIN, JobStatus.CANCELLED),
                     (JobKind.EXTRACT, JobStatus.QUEUED), (JobKind.PATCH_INDEX, JobStatus.DONE)}  # fmt: skip
    for job in found:
        raw = stored(f"jobs/{job.job_id}.json")
        assert job.to_json() == raw  # main's layout, key for key
        assert job.summary() == rows[job.job_id] == job_records._summary_of(raw)
        assert rows[job.job_id].to_row() == stored("jobs/index.json")["jobs"][job.job_id]
    train = next(j for j in found if j.kind == JobKind.TRAIN and j.status == JobStatus.DONE)
    assert isinstance(train.lr_finder, LRFinderResult) and all(isinstance(e, EpochRow) for e in train.epochs)
    assert isinstance(train.last, TrainEvent) and train.last.kind == EventKind.EPOCH
    finder = next(j for j in found if j.kind == JobKind.LR_FIND)
    assert isinstance(finder.result, LRFinderResult) and "valley" in finder.result.suggestions
    index_job = next(j for j in found if j.kind == JobKind.PATCH_INDEX)
    assert index_job.last.kind == EventKind.INDEX and index_job.patch.model_kind == "imagenet"


def test_a_patch_index_written_by_main_loads_and_saves_the_same(tmp_path):
    index = patches.verify_index(MAIN / "patch_index.npz")
    assert index.stage == "0.0.3" and index.size == 32 and len(index.paths) == 6 and index.n_channels == 24
    patches.save_index(index, tmp_path / "again.npz")
    with np.load(MAIN / "patch_index.npz") as before, np.load(tmp_path / "again.npz") as after:
        assert sorted(before.files) == sorted(after.files)
        for name in before.files:
            np.testing.assert_array_equal(before[name], after[name])
            assert before[name].dtype == after[name].dtype, name


def test_class_settings_worker_heartbeat_and_manifest_of_main_load_typed(data_folder):
    shutil.copy(MAIN / "class.json", class_file(data_folder))
    settings = classroom.read_class_settings(data_folder)
    assert settings.dataset.name == "tiny" and settings.model_run == "7ff1f9116eacb852"
    assert records.to_json(settings) == stored("class.json")
    shutil.copy(MAIN / "worker.json", job_records.jobs_dir(data_folder) / worker.WORKER_FILE)
    info = worker.worker_info(data_folder)
    assert info.queue == "sqlite" and info.threads == 3 and records.to_json(info) == stored("worker.json")
    manifest = Manifest.from_dict(stored("manifest.json"))
    assert all(isinstance(r, BundleRun) and isinstance(r.config, RunConfig) for r in manifest.runs)
    assert manifest.dataset.fingerprint == manifest.runs[0].config.dataset and len(manifest.files) == 53
    assert json.loads(manifest.to_json()) == stored("manifest.json")
