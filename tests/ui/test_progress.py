"""ui.progress: one event is drawn one way, whether the training runs in this tab, in the worker or in another tab."""

from streamlit.testing.v1 import AppTest

TIMEOUT = 60


def three_places():
    """The same batch event as this tab's live display, a worker's job record and another tab's progress file."""
    import streamlit as st

    from core.data.datasets import DatasetSpec
    from core.i18n import set_language
    from core.store import training_lock
    from core.store.records import EpochRow, EventKind, RunConfig, StageConfig, TrainEvent
    from core.teach.job_records import JobRecord
    from ui.progress import LiveBar, LiveTraining, job_bar
    from ui.state import runs_dir
    from ui.training import other_training_ui

    set_language(st.query_params.get("lang", "en"))
    config = RunConfig(dataset="d", stages=(StageConfig(2, 2.5e-3, fast=True), StageConfig(1, 1e-4, unfreeze=True)))
    row = TrainEvent(EventKind.EPOCH, n_epoch=2, row=EpochRow(0, 0, 1.2, 1.0, 0.439, 3.0))
    batch = TrainEvent(EventKind.BATCH, stage=1, epoch=0, n_epoch=1, iter=3, n_iter=10, loss=0.5, lr=1e-4)

    live = LiveTraining(config)  # this tab trains
    live(row)
    live(batch)
    job_bar(JobRecord("j1", "t", config, DatasetSpec("d", "folder", "/nowhere"), last=batch))  # the worker
    job_bar(JobRecord("j2", "t", config, DatasetSpec("d", "folder", "/nowhere")), "waiting for the worker")
    progress = training_lock.TrainProgress(title=config.title(), config=config).with_event(row).with_event(batch)
    training_lock.write_progress(runs_dir(), progress)
    with training_lock.training_lock(runs_dir()):  # another tab trains
        other_training_ui()
    index = LiveBar("Indexing…", (EventKind.INDEX,))  # a short job here sees only its own kind of event
    on_event = index()
    on_event(batch)
    on_event(TrainEvent(EventKind.INDEX, i=5, n=20))


def test_one_event_is_one_bar_wherever_the_training_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("PETLAB_DATA", str(tmp_path))
    for lang, line in (
        ("en", "stage 2 · epoch 1/1 · batch 3/10 · loss 0.500 · lr 1e-04"),
        ("zh", "阶段 2 · 轮 1/1 · 批次 3/10 · 损失 0.500 · 学习率 1e-04"),
    ):
        at = AppTest.from_function(three_places, default_timeout=TIMEOUT)
        at.query_params["lang"] = lang
        at.run()
        assert not at.exception
        bars = [(round(b.proto.value), b.proto.text) for b in at.get("progress")]
        assert bars[0] == bars[1] == bars[3] == (30, line)  # 3/10 of the stage's one epoch, one text
        assert bars[2][0] == 0 and bars[2][1] == "waiting for the worker"  # no event yet: what it waits for
        assert bars[4][0] == 25 and "5/20" in bars[4][1]  # the index's own event, not the batch
        assert lang == "zh" or bars[4][1] == "indexing the top patches: 5/20 images"
        assert len(at.dataframe) == 2  # the epoch table, live and from the progress file
