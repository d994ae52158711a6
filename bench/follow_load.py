"""Follow the teacher: what N students' Lesson pages cost the server per teacher step change and at idle.

N simulated students (Streamlit's own websocket protocol, bench/class_load.Student, not browsers: the load
generator costs little CPU) open a page of a class-mode server and answer the sidebar's `run_every` polling
as a browser does. Rounds on one server, measured side by side in one run:

- `alone`: no student, the teacher alone (what the server does anyway);
- `data`: N students on the Data page (their sidebar shows where the teacher is, with a link back);
- `own`: N students on the Lesson page with *Follow the teacher* off (the same polling, nothing follows);
- `follow`: N students on the Lesson page following the teacher (the default).

Each round: IDLE seconds with nothing changing (the server's CPU per second), then the teacher moves through
STEPS, one change every GAP seconds, through core.teach.classroom.share_lesson_step as the teacher's Lesson page
does (the teacher's own page run is the same in every round, so it is left out). Per change: the server's CPU
over the GAP window, and for followers the time until each page reran and its URL showed the new step. As a
yardstick, the `self` round has the same N students press Next (each its own Lesson page rerun) once.

    .venv/bin/python -m bench.follow_load --students 30 --idle 30 --gap 15 --steps 3 4 5 2 \
        --rounds alone data own follow own follow

A round named twice is measured twice (interleaved, so a drift of the shared machine's load hits both);
the ratios use the mean of each kind.

The server process only (pid's /proc stat), load average printed: the 2 cores are shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

from streamlit.proto.WidgetStates_pb2 import WidgetState

from bench.class_load import Student, proc_cpu, proc_rss_mb, start_server

ROOT = Path(__file__).resolve().parent.parent

FOLLOW_KEY = "lesson_follow"  # ui/live.py: the student's toggle
NEXT_KEY = "lesson_next"
WAVE_S = 60.0  # a follower whose page has not shown the step by then counts as not reached


@dataclass
class Round:
    name: str
    students: int
    idle_s: float
    idle_cpu: float
    idle_polls: int
    idle_full: int  # whole-page reruns while nothing changed (should be 0)
    change_cpu: list[float] = field(default_factory=list)  # server CPU seconds per step change (its GAP window)
    latencies: list[float] = field(default_factory=list)  # followers: change -> page rerun showing the step
    reached: list[int] = field(default_factory=list)  # followers that showed each step
    load: float = float("nan")

    @property
    def idle_per_s(self) -> float:
        return self.idle_cpu / self.idle_s

    @property
    def per_change(self) -> float:
        return sum(self.change_cpu) / max(1, len(self.change_cpu))

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def step_in_url(student: Student) -> int | None:
    values = parse_qs(student.query).get("step")
    return int(values[0]) if values else None


async def open_students(url: str, n: int, page: str, timeout: float) -> list[Student]:
    students = [Student(url, page=page) for _ in range(n)]
    await asyncio.gather(*(s.connect() for s in students))
    opened = await asyncio.gather(*(s.rerun(timeout=timeout) for s in students))
    errors = [r.error for r in opened if r.error]
    if errors:
        raise RuntimeError(f"{len(errors)} students could not open {page!r}: {errors[:3]}")
    return students


async def measure(url: str, pid: int, data: Path, name: str, n: int, args) -> Round:
    """One round: open, stop following where asked, idle, then the teacher's step changes."""
    from core.auth import TEACHER, Identity
    from core.teach import classroom

    teacher = Identity(TEACHER, "bench-teacher")
    classroom.share_lesson_step(data, teacher, 1)
    load = os.getloadavg()[0]
    page = "" if name == "data" else "lesson"
    students = await open_students(url, n if name != "alone" else 0, page, args.timeout)
    if name == "own":  # each turns Follow the teacher off, as its toggle does
        for s in students:
            await s.rerun([WidgetState(id=s.widgets[FOLLOW_KEY].id, bool_value=False)], timeout=args.timeout)
    stop = asyncio.Event()
    pollers = [asyncio.create_task(s.poll(stop, args.idle + args.gap * (len(args.steps) + 2))) for s in students]
    await asyncio.sleep(5.0)  # every tab has polled once
    cpu0, polls0 = proc_cpu(pid), sum(s.polls for s in students)
    full0 = sum(len(s.full_reruns) for s in students)
    await asyncio.sleep(args.idle)
    result = Round(name, len(students), args.idle, proc_cpu(pid) - cpu0, sum(s.polls for s in students) - polls0,
                   sum(len(s.full_reruns) for s in students) - full0, load=load)  # fmt: skip
    for step in args.steps:
        before = [len(s.full_reruns) for s in students]
        cpu1, changed = proc_cpu(pid), time.monotonic()
        classroom.share_lesson_step(data, teacher, step)
        seen: dict[int, float] = {}
        while time.monotonic() - changed < max(args.gap, WAVE_S if name == "follow" else 0):
            for i, s in enumerate(students):
                if i not in seen and len(s.full_reruns) > before[i] and step_in_url(s) == step:
                    seen[i] = s.full_reruns[before[i]] - changed
            if time.monotonic() - changed >= args.gap and (name != "follow" or len(seen) == len(students)):
                break
            await asyncio.sleep(0.1)
        window = time.monotonic() - changed
        result.change_cpu.append((proc_cpu(pid) - cpu1) * args.gap / window)  # as over GAP s
        result.latencies += list(seen.values())
        result.reached.append(len(seen))
    stop.set()
    await asyncio.gather(*pollers)
    await asyncio.gather(*(s.close() for s in students))
    return result


async def press_next(url: str, pid: int, data: Path, n: int, args) -> float:
    """The yardstick: N students on the Lesson page, following off, each press Next once (a page rerun each)."""
    from core.auth import TEACHER, Identity
    from core.teach import classroom

    classroom.share_lesson_step(data, Identity(TEACHER, "bench-teacher"), args.steps[0] - 1)
    students = await open_students(url, n, "lesson", args.timeout)
    for s in students:
        await s.rerun([WidgetState(id=s.widgets[FOLLOW_KEY].id, bool_value=False)], timeout=args.timeout)
    cpu0 = proc_cpu(pid)
    results = await asyncio.gather(
        *(s.rerun([WidgetState(id=s.widgets[NEXT_KEY].id, trigger_value=True)], timeout=args.timeout) for s in students)
    )
    cpu = proc_cpu(pid) - cpu0
    await asyncio.gather(*(s.close() for s in students))
    errors = [r.error for r in results if r.error]
    if errors:
        raise RuntimeError(f"Next failed: {errors[:3]}")
    return cpu


async def warm_up(url: str, data: Path, steps: list[int], timeout: float) -> None:
    """One follower walks the steps first: a fresh server runs its first sessions without app.py, and the
    batch grid and feature maps are computed once (st.cache_data) before any round measures them."""
    from core.auth import TEACHER, Identity
    from core.teach import classroom

    for step in [1, *steps]:
        classroom.share_lesson_step(data, Identity(TEACHER, "bench-teacher"), step)
        student = Student(url, page="lesson")
        await student.connect()
        result = await student.rerun(timeout=timeout)
        await student.close()
        if result.error:
            raise RuntimeError(f"warm-up, step {step}: {result.error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of polling with nothing changing")
    parser.add_argument("--gap", type=float, default=15.0, help="seconds between the teacher's step changes")
    parser.add_argument("--steps", type=int, nargs="+", default=[3, 4, 5, 2], help="the steps the teacher moves to")
    parser.add_argument("--rounds", nargs="+", default=["alone", "data", "own", "follow"])
    parser.add_argument("--timeout", type=float, default=240.0)
    args = parser.parse_args()

    from core.data.synthetic import make_pets_like

    work = Path(tempfile.mkdtemp(prefix="petlab-follow-load-"))
    data = work / "data"
    data.mkdir()
    images = make_pets_like(work / "pets" / "images", n_per_class=8)
    proc, url = start_server(data, images)
    print(f"class mode, server pid {proc.pid}; {args.students} students; load average before: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)  # fmt: skip
    try:
        asyncio.run(warm_up(url, data, args.steps, args.timeout))
        rounds: dict[str, list[Round]] = {}
        for name in args.rounds:
            r = asyncio.run(measure(url, proc.pid, data, name, args.students, args))
            rounds.setdefault(name, []).append(r)
            polls = f"{1000 * r.idle_cpu / r.idle_polls:.1f} ms per poll, " if r.idle_polls else ""
            line = (f"{name:6s} {r.students:3d} tabs (load {r.load:.1f}): idle {r.idle_per_s:.1%} of a core "
                    f"({polls}{r.idle_full} page reruns); per step change {r.per_change:.2f} CPU s "
                    f"over {args.gap:.0f} s")  # fmt: skip
            if name == "follow":
                line += (f"; reached {min(r.reached)}-{max(r.reached)}/{r.students} per change, p50 "
                         f"{r.pct(0.5):.1f} s p95 {r.pct(0.95):.1f} s max {max(r.latencies, default=float('nan')):.1f} s")  # fmt: skip
            print(line, flush=True)
        pressed = asyncio.run(press_next(url, proc.pid, data, args.students, args))
        print(f"self   {args.students:3d} tabs each press Next once: {pressed:.2f} CPU s "
              f"({pressed / args.students:.3f} s per page rerun)", flush=True)  # fmt: skip
        print(f"server RSS at the end: {proc_rss_mb(proc.pid):.0f} MB; load average after: "
              f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")  # fmt: skip
        mean = {name: (sum(r.idle_per_s for r in rs) / len(rs), sum(r.per_change for r in rs) / len(rs))
                for name, rs in rounds.items()}  # fmt: skip
        for name in ("alone", "data", "own"):
            if "follow" in mean and name in mean:
                (fi, fc), (oi, oc) = mean["follow"], mean[name]
                print(f"follow / {name} (mean of rounds): idle {fi / max(oi, 1e-9):.2f}x, "
                      f"per step change {fc / max(oc, 1e-9):.1f}x")  # fmt: skip
        if "follow" in mean and "own" in mean:
            extra = (mean["follow"][1] - mean["own"][1]) / args.students
            print(f"a follower's rerun costs {extra:.3f} CPU s, its own Next {pressed / args.students:.3f} s "
                  f"({extra * args.students / max(pressed, 1e-9):.2f}x)")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
