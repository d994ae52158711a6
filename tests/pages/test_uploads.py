"""ui/uploads.py: what Streamlit's upload manager may hold, per tab and in all (issue 18, item 3)."""

import pytest
from starlette.exceptions import HTTPException
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.uploaded_file_manager import UploadedFileRec

from ui.uploads import UploadLimits, bound_manager, install_upload_limits

MB = 1024**2


def rec(file_id: str, size_mb: float) -> UploadedFileRec:
    return UploadedFileRec(file_id=file_id, name="x.jpg", type="image/jpeg", data=b"\0" * int(size_mb * MB))


def test_a_tab_holds_at_most_its_share_and_disconnected_tabs_go_first_when_all_is_full():
    manager = MemoryUploadedFileManager("/_stcore/upload_file")
    connected = {"alice", "bob"}
    bound_manager(manager, UploadLimits(per_session=10 * MB, total=25 * MB), lambda sid: sid in connected)
    manager.add_file("alice", rec("a1", 6))
    manager.add_file("alice", rec("a1", 8))  # the same id again replaces the file: 8 MB held, not 14
    with pytest.raises(HTTPException) as refused:
        manager.add_file("alice", rec("a2", 3))
    assert refused.value.status_code == 413 and "limit is 10 MB" in refused.value.detail
    manager.add_file("gone", rec("g1", 9))
    manager.add_file("bob", rec("b1", 7))  # 24 MB in all
    connected.discard("gone")  # closed its tab: Streamlit keeps its files two minutes for a reconnect
    manager.add_file("bob", rec("b2", 3))  # over the total: the disconnected tab's files make room
    assert manager.get_files("gone", ["g1"]) == [] and len(manager.get_files("bob", ["b1", "b2"])) == 2
    with pytest.raises(HTTPException, match="413"):
        manager.add_file("carol", rec("c1", 9))  # everyone left is connected: refused, nothing evicted
    assert len(manager.get_files("alice", ["a1"])) == 1


def test_a_tab_holds_at_most_so_many_files():
    manager = MemoryUploadedFileManager("/_stcore/upload_file")
    bound_manager(manager, UploadLimits(per_session=10 * MB, total=25 * MB, files_per_session=3), lambda sid: True)
    for n in range(3):
        manager.add_file("alice", UploadedFileRec(file_id=f"f{n}", name="x", type="x", data=b""))
    with pytest.raises(HTTPException) as refused:
        manager.add_file("alice", UploadedFileRec(file_id="f3", name="x", type="x", data=b""))
    assert "3 uploaded files; the limit is 3" in refused.value.detail  # the count, not "0 MB of uploads"


def test_without_a_server_nothing_is_installed():
    assert install_upload_limits() is False  # AppTest and plain Python have no Streamlit runtime


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("PETLAB_UPLOAD_SESSION_MB", "20")
    monkeypatch.setenv("PETLAB_UPLOAD_TOTAL_MB", "not a number")
    assert UploadLimits.from_env() == UploadLimits(per_session=20 * MB, total=512 * MB)
