"""Where a Prediction rerun's server CPU goes: cProfile in Streamlit's script thread, end to end.

Starts the real server (laptop mode, its own temp data folder, 127.0.0.1) in a child process whose
`ScriptRunner._run_script` is wrapped in a cProfile profiler, so every script run (whole page or
fragment) is profiled in the thread that runs it. Simulated students (bench/class_load.py's protocol
client) open Prediction, then predict their own 1024×768 photo one at a time; the server then writes
the summed profile, and this prints the top functions by cumulative and own time, plus the server's
CPU seconds per prediction (/proc, all threads: the websocket sends too).

    .venv/bin/python -m bench.profile_prediction --predictions 10 [--top 40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROFILE_ENV = "PETLAB_BENCH_PROFILE_OUT"


def serve(port: int) -> None:
    """The server, with every script run profiled; the summed stats go to $PETLAB_BENCH_PROFILE_OUT on SIGUSR1."""
    import cProfile
    import threading

    from streamlit.runtime.scriptrunner import script_runner
    from streamlit.web import cli

    out, lock, profiles = os.environ[PROFILE_ENV], threading.Lock(), []
    original = script_runner.ScriptRunner._run_script

    def profiled(self, rerun_data):
        profile = cProfile.Profile()
        profile.enable()
        try:
            return original(self, rerun_data)
        finally:
            profile.disable()
            with lock:
                profiles.append(profile)

    def clear(*_):
        with lock:
            profiles.clear()

    def dump(*_):
        with lock:
            if profiles:
                stats = pstats.Stats(profiles[0])
                for more in profiles[1:]:
                    stats.add(more)
                stats.dump_stats(out)
                profiles.clear()

    script_runner.ScriptRunner._run_script = profiled
    signal.signal(signal.SIGUSR1, dump)
    signal.signal(signal.SIGUSR2, clear)
    sys.argv = ["streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true", "--server.address",
                "127.0.0.1", "--server.port", str(port), "--server.enableXsrfProtection", "false",
                "--browser.gatherUsageStats", "false"]  # fmt: skip
    os.chdir(ROOT)
    cli.main()


async def open_students(url: str, n: int) -> list:
    """n students with Prediction open (no photo yet)."""
    from bench.class_load import Student

    students = []
    for _ in range(n):
        student = Student(url)
        await student.connect()
        opened = await student.rerun(timeout=180)
        if opened.error:
            raise RuntimeError(f"open: {opened.error}")
        students.append(student)
    return students


async def predictions(students: list, seed: int) -> list[float]:
    """Each student, one after another, uploads its photo and waits for the top-5 chart."""
    from bench.class_load import TOP5_KEY, photo

    times = []
    for i, student in enumerate(students):
        state = await student.upload(f"student{i}.jpg", photo(seed + i))
        result = await student.rerun([state], fragment_id=student.uploader_fragment, timeout=180, auto=False)
        if result.error or TOP5_KEY not in result.elements:
            raise RuntimeError(f"prediction {i}: {result.error or 'no top-5 chart'}")
        times.append(result.seconds)
    return times


async def session(url: str, n: int, seed: int, between) -> list[float]:
    students = await open_students(url, n)
    between()
    try:
        return await predictions(students, seed)
    finally:
        for student in students:
            await student.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=int, default=10)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    from bench.class_load import free_port, proc_cpu
    from core.data.synthetic import make_pets_like

    work = Path(tempfile.mkdtemp(prefix="petlab-profile-"))
    data = work / "data"
    data.mkdir()
    images = make_pets_like(work / "pets" / "images", n_per_class=4)
    out = work / "prediction.prof"
    port = free_port()
    env = dict(os.environ, PETLAB_DATA=str(data), PETLAB_DATASET=str(images), PETLAB_LOCAL_WORKER="0")
    env[PROFILE_ENV] = str(out)
    env.pop("PETLAB_TEACHER_PASSWORD", None)
    log = open(data / "server.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-m", "bench.profile_prediction", "--serve", str(port)], cwd=ROOT, env=env,
                            stdout=log, stderr=log)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError((data / "server.log").read_text()[-2000:]) from None
                time.sleep(0.5)
        warm = asyncio.run(session(url, 2, 50_000, lambda: None))  # model load, fast path, first backward
        print(f"warm-up: {[round(t, 2) for t in warm]} s", flush=True)
        cpu0 = [0.0]

        def start_measuring() -> None:  # the students have opened the page: profile only their predictions
            proc.send_signal(signal.SIGUSR2)
            time.sleep(1)
            cpu0[0] = proc_cpu(proc.pid)

        times = asyncio.run(session(url, args.predictions, 60_000, start_measuring))
        cpu = proc_cpu(proc.pid) - cpu0[0]
        proc.send_signal(signal.SIGUSR1)
        deadline = time.time() + 30
        while not out.exists() and time.time() < deadline:
            time.sleep(0.2)
        n = args.predictions
        print(f"{n} predictions, one at a time: median {sorted(times)[n // 2]:.3f} s to the result; "
              f"server CPU {cpu / n:.3f} s per prediction (upload + rerun, all threads)")  # fmt: skip
        stats = pstats.Stats(str(out))
        total = stats.total_tt
        print(f"script threads: {total / n:.3f} s per prediction rerun, profiled")
        stats.sort_stats("cumulative").print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
