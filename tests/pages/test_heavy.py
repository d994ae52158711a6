"""ui.heavy: a tab waiting for a heavy-work slot is shown its place in line, and the note goes once it runs."""

import os
import threading

import torch

from core.teach.slots import WorkSlots
from ui import heavy


class Note:
    """Stands for st.empty(): records what the placeholder shows."""

    def __init__(self, shown: list[str]):
        self.shown = shown

    def info(self, text: str) -> None:
        self.shown.append(text)

    def empty(self) -> None:
        self.shown.append("")


def another_student_holds(slots: WorkSlots) -> threading.Thread:
    """Another tab takes the one slot now and frees it 0.2 s later; returns its thread (join it)."""
    held, release = threading.Event(), threading.Event()

    def other_student() -> None:
        with slots.slot():
            held.set()
            release.wait(5)

    thread = threading.Thread(target=other_student)
    thread.start()
    held.wait(5)
    threading.Timer(0.2, release.set).start()
    return thread


def test_waiting_tab_sees_its_place_then_the_note_is_cleared(monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(heavy.st, "empty", lambda: Note(shown))
    slots = WorkSlots(1)
    thread = another_student_holds(slots)
    ran = []
    with heavy.heavy_work_ui("The occlusion map", slots):
        ran.append(torch.get_num_threads())
    thread.join(5)
    assert ran == [max(1, os.cpu_count() or 1)]  # the one slot gets every core
    assert shown[0].startswith("⏳ The occlusion map waits for the server")
    assert "you are next" in shown[0] and "1 such job at a time" in shown[0]
    assert shown[-1] == ""  # cleared before the work ran


def test_free_slot_runs_at_once_without_a_note(monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(heavy.st, "empty", lambda: Note(shown))
    with heavy.heavy_work_ui("Projecting back to pixels", WorkSlots(1)):
        pass
    assert shown == []


def test_interactive_runs_use_one_torch_thread_unless_told(monkeypatch):
    from ui import frame

    seen = []

    def run() -> None:  # a script run has its own thread; OpenMP's thread count is per thread
        frame.ensure_app_frame()
        seen.append(torch.get_num_threads())

    for value, expected in ((None, 1), ("2", 2), ("nonsense", 1)):
        if value is None:
            monkeypatch.delenv(frame.THREADS_ENV_VAR, raising=False)
        else:
            monkeypatch.setenv(frame.THREADS_ENV_VAR, value)
        thread = threading.Thread(target=run)
        thread.start()
        thread.join(10)
        assert seen.pop() == expected


def test_place_in_line_in_the_tabs_language(monkeypatch):
    from core.i18n import _, set_language

    shown: list[str] = []
    monkeypatch.setattr(heavy.st, "empty", lambda: Note(shown))
    slots = WorkSlots(1)
    thread = another_student_holds(slots)
    set_language("zh")
    try:
        with heavy.heavy_work_ui(_("The occlusion map"), slots):
            pass
    finally:
        set_language("en")
    thread.join(5)
    assert shown[0] == "⏳ 遮挡敏感度图正在等待服务器（此类任务每次只运行 1 个，下一个就轮到你）。"
