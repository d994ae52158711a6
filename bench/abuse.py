"""Abuse: one hostile student's resource attacks on a real class-mode server, while a victim student works.

The server runs in class mode on 127.0.0.1 (bench/class_load.py's start_server; no worker unless --worker).
Everyone speaks Streamlit's own websocket protocol and upload route (bench/class_load.py's Student), as a
browser would. The victim repeatedly opens Data, Augmentation and Layers and predicts a photo of its own on
Prediction; each action is timed. First alone (idle), then during each attack of issue 18:

- reruns (the control): one tab rerunning the Data page as fast as it can with harmless patterns: what any
  tab can cost by clicking fast, against which the attacks below compare;
- pattern: explosive labelling patterns typed into the Data page, `((a{300}){200}){100}` and others;
- png: the 0.30 MB PNG of 12000×12000 16-bit pixels uploaded to Prediction from two tabs, again and again;
- uploads: 45 MB files PUT to the attacker's own sessions under ids of its choosing, from fresh tabs;
- own-classes: one tab making classes and adding photos until refused, and on;
- queue: fresh tabs each queueing a patch index (a different image count each), then the teacher's training;
- occlusion: four tabs computing occlusion maps back to back (the victim's own map timed too);
- job-records: 10,000 finished job records in the job store (every tab's sidebar polls the queue).

    .venv/bin/python -m bench.abuse [--iterations 8] [--attacks pattern png ...] [--worker]

Prints per phase the victim's p50/p95 and its ratio to idle (goal: <= 2x), the server's peak memory during
the phase (sampled every 0.2 s) and what failed; per attack, what the server did with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from streamlit.proto.Common_pb2 import FileUploaderState
from streamlit.proto.WidgetStates_pb2 import WidgetState

from bench.class_load import Student, photo, proc_rss_mb, put_file, start_server

ATTACKS = ("reruns", "pattern", "png", "uploads", "own-classes", "queue", "occlusion", "job-records")
PATTERNS = (r"((a{300}){200}){100}", r"((a{1000}){1000}){1000}", r"(((ab){30}){30}){30}(x)", "(" + "a" * 400 + ")")
VICTIM_PAGES = ("data", "augmentation", "layers")


# ---- the protocol, one step up ---------------------------------------------------------------------------


async def goto(student: Student, page: str, timeout: float) -> float:
    """Open a page as the browser's navigation does; the seconds it took (raises on an error)."""
    student.page, student.page_hash = page, ""
    result = await student.rerun(timeout=timeout)
    if result.error:
        raise RuntimeError(f"{page}: {result.error}")
    return result.seconds


ATTACKER, VICTIM = "10.20.0.66", "10.20.0.2"  # two computers of the class (limits and turns count computers)


async def opened(url: str, page: str, timeout: float, address: str = ATTACKER) -> Student:
    student = Student(url, page=page, address=address)
    await student.connect()
    result = await student.rerun(timeout=timeout)
    if result.error:
        await student.close()
        raise RuntimeError(f"open {page}: {result.error}")
    return student


def widget(student: Student, prefix: str):
    """The widget drawn last whose key starts with prefix."""
    return next(w for key, w in student.widgets.items() if key.startswith(prefix))


async def upload_into(student: Student, label: str, files: list[tuple[str, bytes]]) -> WidgetState:
    """Upload files into the uploader with this label (several at once): its new widget state."""
    infos = []
    for name, data in files:
        state = await student.upload(name, data, label=label)
        infos.extend(state.file_uploader_state_value.uploaded_file_info)
    return WidgetState(
        id=student.uploaders[label][0], file_uploader_state_value=FileUploaderState(uploaded_file_info=infos)
    )


# ---- the victim ----------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    times: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    peak_mb: float = 0.0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


async def victim(url: str, iterations: int, seed: int, timeout: float, phase: Phase, min_seconds: float = 0) -> None:
    """Open the pages and predict a new photo, `iterations` times and for at least min_seconds; every action
    timed, every failure kept."""
    student = await opened(url, "prediction", timeout, address=VICTIM)
    start, i = time.monotonic(), 0
    try:
        while i < iterations or time.monotonic() - start < min_seconds:
            i += 1
            for page in VICTIM_PAGES:
                try:
                    phase.times.append(await goto(student, page, timeout))
                except (RuntimeError, TimeoutError) as err:
                    phase.failures.append(str(err)[:160])
            try:
                await goto(student, "prediction", timeout)
                state = await student.upload(f"victim{seed + i}.jpg", photo(seed + i))
                result = await student.rerun(
                    [state], fragment_id=student.uploader_fragment, timeout=timeout, auto=False
                )
                if result.error or "pred_chart_0" not in result.elements:
                    phase.failures.append(f"predict: {result.error or 'no top-5 chart'}")
                else:
                    phase.times.append(result.seconds)
            except (RuntimeError, TimeoutError, KeyError) as err:
                phase.failures.append(f"predict: {err}"[:160])
    finally:
        await student.close()


def sample_rss(pid: int, stop: threading.Event, phase: Phase) -> None:
    while not stop.is_set():
        with contextlib.suppress(OSError):
            phase.peak_mb = max(phase.peak_mb, proc_rss_mb(pid))
        stop.wait(0.2)


# ---- the attacks ---------------------------------------------------------------------------------------

Attack = Callable[[str, Path, asyncio.Event, Phase, float], Awaitable[None]]


async def attack_reruns(url: str, data: Path, stop: asyncio.Event, phase: Phase, timeout: float) -> None:
    """The control: one tab rerunning the Data page as fast as it can with harmless patterns. What is left of an
    attack's cost beyond this is the attack's own."""
    student = await opened(url, "data", timeout)
    typed = 0
    try:
        while not stop.is_set():
            pattern = (r"^(.+)_\d+\.jpg$", r"^([A-Za-z]+)_\d+\.jpg$")[typed % 2]
            await student.rerun([WidgetState(id=widget(student, "data_pattern_").id, string_value=pattern)])
            typed += 1
    finally:
        await student.close()
    phase.notes.append(f"{typed} reruns of the Data page with harmless patterns (the control)")


async def attack_pattern(url: str, data: Path, stop: asyncio.Event, phase: Phase, timeout: float) -> None:
    student = await opened(url, "data", timeout)
    refused = typed = 0
    try:
        while not stop.is_set():
            pattern = PATTERNS[typed % len(PATTERNS)]
            box = widget(student, "data_pattern_")
            result = await student.rerun([WidgetState(id=box.id, string_value=pattern)], timeout=timeout)
            typed += 1
            refused += any("limit is" in a for a in result.alerts)
            await student.rerun([WidgetState(id=widget(student, "data_pattern_").id, string_value=r"^(.+)_\d+\.jpg$")])
    finally:
        await student.close()
    phase.notes.append(f"{typed} explosive patterns typed, {refused} refused before compiling")


async def attack_png(url: str, data: Path, stop: asyncio.Event, phase: Phase, timeout: float) -> None:
    from core.data.synthetic import blank_png

    bomb = blank_png(12_000, 12_000)
    counts = {"sent": 0, "refused": 0}

    async def one_tab() -> None:
        while not stop.is_set():
            student = await opened(url, "prediction", timeout)
            try:
                while not stop.is_set():
                    try:
                        state = await student.upload("scan.png", bomb)
                    except RuntimeError:  # HTTP 413: this tab holds its most files; a fresh tab goes on
                        counts["tab full"] = counts.get("tab full", 0) + 1
                        break
                    result = await student.rerun(
                        [state], fragment_id=student.uploader_fragment, timeout=timeout, auto=False
                    )
                    counts["sent"] += 1
                    counts["refused"] += any("decoding it would take" in a for a in result.alerts)
            finally:
                await student.close()

    await asyncio.gather(one_tab(), one_tab())
    phase.notes.append(
        f"{counts['sent']} 12000×12000 16-bit PNGs uploaded, {counts['refused']} refused from the header "
        f"({counts.get('tab full', 0)} times a tab held its 200 files and a new tab went on)"
    )


async def attack_uploads(url: str, data: Path, stop: asyncio.Event, phase: Phase, timeout: float) -> None:
    blob = b"\1" * (45 * 1024**2)
    statuses: dict[int, int] = {}
    n = 0
    while not stop.is_set():
        student = await opened(url, "prediction", timeout)
        try:
            for _ in range(4):
                n += 1
                try:
                    path = f"/_stcore/upload_file/{student.session_id}/evil{n}"
                    await asyncio.to_thread(put_file, url, path, "x.jpg", blob)
                    status = 204
                except RuntimeError as err:
                    status = int(str(err).rsplit(" ", 1)[-1])
                except OSError:
                    status = 0  # the server closed the connection on an oversized body
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            await student.close()
    phase.notes.append(f"{n} PUTs of 45 MB to the attacker's sessions: " + ", ".join(
        f"{k or 'closed'}: {v}" for k, v in sorted(statuses.items())))  # fmt: skip


async def attack_own_classes(url: str, data: Path, stop: asyncio.Event, phase: Phase, timeout: float) -> None:
    student = await opened(url, "data", timeout)
    made = photos = 0
    refusals: set[str] = set()
    try:
        while not stop.is_set() and made < 1000:
            states = [
                WidgetState(id=student.widgets["data_own_new"].id, string_value=f"c{made}"),
                WidgetState(id=student.widgets["data_own_add"].id, trigger_value=True),
            ]
            result = await student.rerun(states, timeout=timeout)
            refused = [a for a in result.alerts if "the most one student may make" in a]
            refusals.update(a.split(":")[0] for a in refused)
            if refused:
                break
            made += 1
        n = 0
        while not stop.is_set() and "Photos" in student.uploaders:
            batch = [(f"p{n + k}.jpg", photo(50_000 + n + k)) for k in range(10)]
            n += 10
            try:
                state = await upload_into(student, "Photos", batch)
            except RuntimeError as err:  # HTTP 413: the tab holds its most files or megabytes (ui.uploads)
                refusals.add(f"upload refused after {n - 10} files: {err}")
                break
            result = await student.rerun(
                [state, WidgetState(id=student.widgets["data_own_save"].id, trigger_value=True)], timeout=timeout
            )
            photos += sum(int(a.split()[1]) for a in result.alerts if a.startswith("Added "))
            refused = [a for a in result.alerts if "the most one class may hold" in a or "may store" in a]
            refusals.update(a.split(":")[0] for a in refused)
            if refused:
                await asyncio.sleep(1.0)  # a script keeps trying; the quota keeps refusing
    finally:
        await student.close()
    used = sum(f.stat().st_size for f in (data / "students").rglob("*.jpg")) if (data / "students").is_dir() else 0
    phase.notes.append(f"{made} classes made, {photos} photos stored ({used / 1024**2:.1f} MB on disk); refused: "
                       + ("; ".join(sorted(refusals)) or "never"))  # fmt: skip


async def attack_queue(url: str, data: Path, stop: asyncio.Event, phase: Phase, timeout: float) -> None:
    from core.auth import TEACHER, Identity
    from core.data.datasets import scan_dataset
    from core.data.pets import pets_spec
    from core.teach import job_records, jobs

    queued = 0
    for n in range(30):  # fresh tabs, each with its own image count: a new index (and job) each
        student = await opened(url, "layers", timeout)
        try:
            states = [WidgetState(id=student.widgets["viz_patch_n"].id, int_value=9 + n)]
            await student.rerun(states, timeout=timeout)
            button = student.widgets.get("viz_patch_build")
            if button is not None:
                result = await student.rerun([WidgetState(id=button.id, trigger_value=True)], timeout=timeout)
                queued += not any("one at a time" in a or "refused" in a for a in result.alerts)
        except (RuntimeError, KeyError) as err:
            phase.notes.append(f"queue tab {n}: {err}"[:120])
        finally:
            await student.close()
    images = Path(os.environ["ABUSE_IMAGES"])
    scan = scan_dataset(pets_spec(images))
    config = jobs.lesson_plan(scan.fingerprint, img_size=32)[0][1]
    teacher = jobs.submit(data, Identity(TEACHER, "abuse-teacher-tab-000"), config, scan.spec)
    ahead = job_records.jobs_ahead(job_records.index(data), teacher.job_id)  # in the order the worker runs them
    phase.notes.append(f"{queued} patch-index jobs queued by 30 fresh tabs of one student; the teacher's training then "
                       f"had {ahead} job(s) ahead of it")  # fmt: skip
    while not stop.is_set():
        await asyncio.sleep(0.5)
    for record in job_records.list_jobs(data):  # leave the queue empty for the next phase
        if record.active:
            with contextlib.suppress(job_records.JobError):
                jobs.stop_job(data, Identity(TEACHER, "abuse-teacher-tab-000"), record.job_id)


async def occlusion_once(url: str, timeout: float, address: str = ATTACKER) -> float:
    student = await opened(url, "layers", timeout, address)
    try:
        result = await student.rerun([WidgetState(id=student.widgets["viz_occ_go"].id, trigger_value=True)],
                                     timeout=timeout)  # fmt: skip
        if result.error:
            raise RuntimeError(result.error)
        return result.seconds
    finally:
        await student.close()


async def attack_occlusion(url: str, data: Path, stop: asyncio.Event, phase: Phase, timeout: float) -> None:
    done = [0]

    async def one_tab() -> None:
        while not stop.is_set():
            await occlusion_once(url, timeout)
            done[0] += 1

    tabs = [asyncio.create_task(one_tab()) for _ in range(4)]
    await asyncio.sleep(3)  # the flood is on
    mine = await occlusion_once(url, timeout, VICTIM)
    phase.notes.append(f"the victim's own occlusion map took {mine:.1f} s during the flood")
    await asyncio.gather(*tabs)
    phase.notes.append(f"{done[0]} occlusion maps computed by four tabs of one student")


async def attack_job_records(url: str, data: Path, stop: asyncio.Event, phase: Phase, timeout: float) -> None:
    while not stop.is_set():
        await asyncio.sleep(0.5)


def write_job_records(data: Path, n: int) -> float:
    """n finished training job records, as days of a class leave them; the seconds it took.

    The files are written as the store writes them, without its index (saving them one by one rewrites the
    index n times, O(n²)): the server's first read rebuilds the index and prunes the store (job_records.index),
    during the phase, as it would on a server whose store was never pruned.
    """
    from core.data.datasets import DatasetSpec
    from core.storage import atomic_write_json
    from core.store.records import RunConfig
    from core.teach import job_records

    start = time.perf_counter()
    spec = DatasetSpec(name="pets", kind="folder", root=str(data))
    config = RunConfig(dataset="pets")
    old = time.time() - 3 * 3600
    folder = job_records.jobs_dir(data)
    for i in range(n):
        record = job_records.JobRecord(job_id=f"old{i:06d}", title=f"old job {i}", config=config, dataset=spec,
                                       status="done", queued_by="student:abuse", created=old + i, finished=old + i)  # fmt: skip
        atomic_write_json(folder / f"{record.job_id}.json", record.to_json())
    return time.perf_counter() - start


ATTACK_FUNCS: dict[str, Attack] = {
    "reruns": attack_reruns,
    "pattern": attack_pattern,
    "png": attack_png,
    "uploads": attack_uploads,
    "own-classes": attack_own_classes,
    "queue": attack_queue,
    "occlusion": attack_occlusion,
    "job-records": attack_job_records,
}


# ---- the run -------------------------------------------------------------------------------------------


async def run_phase(name: str, url: str, pid: int, data: Path, args, seed: int) -> Phase:
    phase = Phase(name)
    stop_sampling = threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(pid, stop_sampling, phase), daemon=True)
    sampler.start()
    stop = asyncio.Event()
    start = time.perf_counter()
    attacker = None
    if name in ATTACK_FUNCS:  # idle and warm-up: the victim alone
        attacker = asyncio.create_task(ATTACK_FUNCS[name](url, data, stop, phase, args.timeout))
        await asyncio.sleep(2.0)  # the attack is under way before the victim starts
    try:
        await victim(url, args.iterations, seed, args.timeout, phase, 0 if name == "warm-up" else args.min_seconds)
    finally:
        stop.set()
        if attacker is not None:
            try:
                await asyncio.wait_for(attacker, args.timeout)
            except Exception as err:  # noqa: BLE001 - an attack that failed is reported, the bench goes on
                phase.notes.append(f"the attack itself failed: {type(err).__name__}: {err}"[:200])
        phase.seconds = time.perf_counter() - start
        stop_sampling.set()
        sampler.join()
    return phase


def report(phase: Phase, idle: Phase | None) -> None:
    ratio = f"{phase.pct(0.95) / idle.pct(0.95):.2f}x idle" if idle and idle.times else "baseline"
    print(f"{phase.name:12s} victim p50 {phase.pct(0.5):.2f} s  p95 {phase.pct(0.95):.2f} s ({ratio})  "
          f"actions {len(phase.times)}  failures {len(phase.failures)}  server peak {phase.peak_mb:.0f} MB  "
          f"{phase.seconds:.0f} s  load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    for note in phase.notes:
        print(f"    {note}", flush=True)
    for failure in sorted(set(phase.failures))[:3]:
        print(f"    failure: {failure}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=8, help="victim rounds per phase (4 actions each)")
    parser.add_argument("--attacks", nargs="+", choices=ATTACKS, default=list(ATTACKS))
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds one action may take")
    parser.add_argument(
        "--min-seconds", type=float, default=30.0, help="the victim works at least this long per attack"
    )
    parser.add_argument("--records", type=int, default=10_000, help="job records for the job-records attack")
    parser.add_argument("--worker", action="store_true", help="start the job worker (queued jobs then run)")
    args = parser.parse_args()

    from core.data.synthetic import make_pets_like

    work = Path(tempfile.mkdtemp(prefix="petlab-abuse-"))
    data = work / "data"
    data.mkdir()
    images = make_pets_like(work / "pets" / "images", n_per_class=8)
    os.environ["ABUSE_IMAGES"] = str(images)
    proc, url = start_server(data, images, extra_env={"PETLAB_LOCAL_WORKER": "1" if args.worker else "0"})
    print(f"class mode on {url} (pid {proc.pid}); load average before: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)  # fmt: skip
    phases: list[Phase] = []
    try:
        warm = asyncio.run(
            run_phase("warm-up", url, proc.pid, data, argparse.Namespace(**{**vars(args), "iterations": 1}), 1)
        )
        print(f"warm-up (model loads, first runs): {len(warm.times)} actions, failures {warm.failures[:2]}")
        idle = asyncio.run(run_phase("idle", url, proc.pid, data, args, 100))
        report(idle, None)
        phases.append(idle)
        for n, name in enumerate(args.attacks):
            if name == "job-records":
                again = asyncio.run(run_phase("idle again", url, proc.pid, data, args, 900))
                report(again, idle)  # how much the machine's own load moved meanwhile
                phases.append(again)
                seconds = write_job_records(data, args.records)
                print(f"    wrote {args.records:,} finished job records in {seconds:.0f} s", flush=True)
            phase = asyncio.run(run_phase(name, url, proc.pid, data, args, 1000 * (n + 2)))
            report(phase, idle)
            phases.append(phase)
        worst = max([p for p in phases if p.name in ATTACK_FUNCS], key=lambda p: p.pct(0.95), default=None)
        print(f"\nserver peak memory over all phases: {max(p.peak_mb for p in phases):.0f} MB; failures: "
              f"{sum(len(p.failures) for p in phases)}" + (f"; worst p95 {worst.pct(0.95) / idle.pct(0.95):.2f}x idle "
              f"({worst.name}; goal <= 2x)" if worst else ""))  # fmt: skip
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except Exception:  # noqa: BLE001
            proc.kill()
        if args.worker:
            from core.teach import worker

            worker.stop_worker(data, timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
