"""The per-tab store: plain values only, capped blobs, bad tokens refused, old tabs purged."""

import os
import time

import pytest

from core.store.session_store import (
    MAX_BLOB_BYTES,
    MAX_BLOBS,
    SessionStore,
    StoreError,
    new_token,
    purge_expired,
    valid_token,
)


def test_values_round_trip_and_are_kept_on_disk(tmp_path):
    token = new_token()
    store = SessionStore(tmp_path, token)
    assert store.values() == {}
    store.update({"aug_size": 224, "aug_presize": True, "data_filter": ["a", "b"], "lr": 3e-3})
    store.update({"aug_size": 160}, remove=("lr",))
    again = SessionStore(tmp_path, token)  # a reload: a new session, the same token
    assert again.values() == {"aug_size": 160, "aug_presize": True, "data_filter": ["a", "b"]}
    assert SessionStore(tmp_path, new_token()).values() == {}  # another tab sees nothing


@pytest.mark.parametrize("token", ["", "../../etc", "a/b" * 10, "x" * 10, "x" * 65, None, 12345678901234567890])
def test_bad_tokens_are_refused(tmp_path, token):
    assert not valid_token(token)
    with pytest.raises(StoreError):
        SessionStore(tmp_path, token)


def test_only_plain_small_values(tmp_path):
    store = SessionStore(tmp_path, new_token())
    with pytest.raises(StoreError, match="plain values"):
        store.update({"x": object()})
    with pytest.raises(StoreError, match="plain values"):
        store.update({"x": float("nan")})
    with pytest.raises(StoreError, match="KB"):
        store.update({"x": "a" * 70_000})
    assert store.values() == {}


def test_damaged_values_file_reads_as_empty(tmp_path):
    store = SessionStore(tmp_path, new_token())
    store.update({"a": 1})
    (store.dir / "values.json").write_text("{not json")
    assert store.values() == {}
    (store.dir / "values.json").write_text("[1, 2]")
    assert store.values() == {}


def test_blobs_are_capped_and_evicted(tmp_path):
    store = SessionStore(tmp_path, new_token())
    assert store.put_blob("aug_upload", b"\x89PNG photo", "cat.png")
    blob = store.get_blob("aug_upload")
    assert (blob.data, blob.filename) == (b"\x89PNG photo", "cat.png")
    assert not store.put_blob("big", b"0" * (MAX_BLOB_BYTES + 1), "huge.jpg")
    assert store.get_blob("big") is None
    for i in range(MAX_BLOBS + 2):
        store.put_blob(f"b{i}", b"x", "x.jpg")
        time.sleep(0.01)
    assert len(list(store.dir.glob("*.bin"))) == MAX_BLOBS
    assert store.get_blob("aug_upload") is None and store.get_blob(f"b{MAX_BLOBS + 1}") is not None
    with pytest.raises(StoreError):
        store.get_blob("../values")
    store.drop_blob(f"b{MAX_BLOBS + 1}")
    assert store.get_blob(f"b{MAX_BLOBS + 1}") is None


def test_purge_removes_only_expired_tabs(tmp_path):
    old, fresh = SessionStore(tmp_path, new_token()), SessionStore(tmp_path, new_token())
    old.update({"a": 1})
    fresh.update({"a": 2})
    past = time.time() - 3600
    for path in [old.dir, *old.dir.iterdir()]:
        os.utime(path, (past, past))
    (tmp_path / "not-a-token").mkdir()
    assert purge_expired(tmp_path, ttl_s=600) == 1
    assert not old.dir.exists() and fresh.values() == {"a": 2} and (tmp_path / "not-a-token").is_dir()
    assert purge_expired(tmp_path / "missing") == 0


def test_move_to_a_new_token_keeps_values_and_blobs(tmp_path):
    old_token, new = new_token(), new_token()
    store = SessionStore(tmp_path, old_token)
    store.update({"teacher_until": 123.0})
    store.put_blob("aug_upload", b"photo", "p.jpg")
    moved = store.move_to(new)
    assert moved.values() == {"teacher_until": 123.0} and moved.get_blob("aug_upload").data == b"photo"
    assert SessionStore(tmp_path, old_token).values() == {}  # the old URL reaches nothing
    assert SessionStore(tmp_path, new_token()).move_to(new_token()).values() == {}  # nothing stored yet


def test_copy_to_takes_values_less_the_excluded_and_the_blobs(tmp_path):
    store = SessionStore(tmp_path, new_token())
    store.update({"aug_size": 160, "ui_lang": "zh", "auth_teacher": "signed"})
    store.put_blob("viz_upload", b"photo bytes", "cat.jpg")
    copy = store.copy_to(new_token(), exclude=("auth_teacher",))
    assert copy.values() == {"aug_size": 160, "ui_lang": "zh"}
    assert copy.get_blob("viz_upload").data == b"photo bytes" and copy.get_blob("viz_upload").filename == "cat.jpg"
    assert store.values()["auth_teacher"] == "signed"  # the original is left as it is
    copy.update({"aug_size": 224})
    assert store.values()["aug_size"] == 160  # and the two are separate from now on
    empty = SessionStore(tmp_path, new_token()).copy_to(new_token())
    assert empty.values() == {}


def test_a_tabs_photos_are_capped_in_bytes_oldest_first(tmp_path):
    from core.store.session_store import MAX_TAB_BLOB_BYTES

    store = SessionStore(tmp_path, new_token())
    big = 9 * 1024**2  # under the one-photo cap; four of them are over the tab's
    for i in range(4):
        assert store.put_blob(f"pred_photo_{i}", bytes([i]) * big, f"{i}.jpg")
        time.sleep(0.01)
    kept = sorted(p.stem for p in store.dir.glob("*.bin"))
    assert kept == ["pred_photo_1", "pred_photo_2", "pred_photo_3"]  # the oldest went
    assert sum(p.stat().st_size for p in store.dir.glob("*.bin")) <= MAX_TAB_BLOB_BYTES
