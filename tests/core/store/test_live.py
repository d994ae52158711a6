"""Live stamps: one stat tells a tab that something it shows changed; who bumps which channel, and what does not."""

import io

from PIL import Image

from core.auth import STUDENT, TEACHER, Identity
from core.data.datasets import DatasetSpec, scan_dataset
from core.data.pets import pets_spec
from core.store import live
from core.store.live import Channel
from core.store.records import RunConfig, StageConfig
from core.teach import classroom, job_records, jobs

TEACH = Identity(TEACHER, "c" * 24)
ALICE = Identity(STUDENT, "a" * 24)


def photo(shade: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (30, 20), (shade, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


def test_a_bump_changes_the_stamp_and_nothing_else_does(tmp_path):
    assert live.version(tmp_path, Channel.CLASS) == "0"  # no stamp yet: a constant
    live.bump(tmp_path, Channel.CLASS)
    first = live.version(tmp_path, Channel.CLASS)
    assert first != "0" and live.version(tmp_path, Channel.CLASS) == first  # reading changes nothing
    assert live.version(tmp_path, Channel.ROSTER) == "0"  # channels are apart
    live.bump(tmp_path, Channel.CLASS)
    assert live.version(tmp_path, Channel.CLASS) != first
    assert live.versions(tmp_path, (Channel.CLASS, Channel.ROSTER))[1] == "0"


def test_a_bump_on_a_read_only_folder_is_lost_not_raised(tmp_path):
    (tmp_path / "live").write_text("a file where the folder should be")
    live.bump(tmp_path, Channel.CLASS)  # the change it announces must not fail
    assert live.version(tmp_path, Channel.CLASS) == "0"


def test_class_choices_and_published_classes_bump_the_class_channel(tmp_path):
    spec = DatasetSpec(name="pets", kind="folder", root=str(tmp_path))
    for change in (
        lambda: classroom.set_class_dataset(tmp_path, TEACH, spec),
        lambda: classroom.set_class_model(tmp_path, TEACH, "abc123"),
        lambda: classroom.set_class_dataset(tmp_path, TEACH, None),
    ):
        before = live.version(tmp_path, Channel.CLASS)
        change()
        assert live.version(tmp_path, Channel.CLASS) != before
    store = classroom.own_store(tmp_path, ALICE)
    before = live.versions(tmp_path, (Channel.CLASS, Channel.ROSTER))
    for name in ("cup", "pen"):
        store.add_class(name)
        for shade in (10, 20):
            store.add_photo(name, photo(shade + len(name)))
    after = live.versions(tmp_path, (Channel.CLASS, Channel.ROSTER))
    assert after[0] == before[0] and after[1] != before[1]  # a student's classes: the teacher's page only
    classroom.publish_classes(tmp_path, TEACH, ALICE.tab, "cups")
    assert live.version(tmp_path, Channel.CLASS) != after[0]  # published: every student's Data page lists it
    assert [p.spec.name for p in classroom.published_classes(tmp_path)] == ["cups (published)"]


def test_a_job_bumps_when_queued_and_when_its_status_changes_not_on_progress(tmp_path, pets_like):
    scan = scan_dataset(pets_spec(pets_like))
    config = RunConfig(dataset=scan.fingerprint, img_size=32, stages=(StageConfig(epochs=1, lr_max=1e-3),))
    queue = jobs.make_queue(tmp_path)
    before = live.version(tmp_path, Channel.CLASS)
    record = jobs.submit(tmp_path, TEACH, config, scan.spec, queue=queue)
    queued = live.version(tmp_path, Channel.CLASS)
    assert queued != before
    job_records.update_job(tmp_path, record.job_id, updated=123.0)  # progress: the stamp stays
    assert live.version(tmp_path, Channel.CLASS) == queued
    jobs.stop_job(tmp_path, TEACH, record.job_id)  # cancelled: every tab's queue changes
    assert live.version(tmp_path, Channel.CLASS) != queued
