"""Class load: N simulated students predicting their own photo at the same moment, on the real server.

Each student speaks Streamlit's own websocket protocol (the protobuf BackMsg/ForwardMsg the browser
sends), not a browser, so the load generator costs little CPU: it opens Prediction, uploads its own
1024×768 JPEG through the upload route, reruns with the uploader's state (only the st.fragment the
uploader is drawn in, as a browser does; the whole page when it is in none) and waits for the run to
finish with the top-5 chart. While waiting, it answers the sidebar job box's `run_every`
polling like a browser would (--no-poll leaves it out). The server runs in class mode on 127.0.0.1;
with --training a training job runs in the worker during the measurement. Every loop is bounded in
count (one prediction per student per round) and in time (--timeout per round).

    .venv/bin/python -m bench.class_load --students 10 20 40 --training

Reports per round: p50/p95/max time to result, errors, server CPU seconds per prediction (the
server process only; the worker is a separate process) and server memory per connected session.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import importlib.util
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Common_pb2 import FileUploaderState, FileURLs, FileURLsRequest, UploadedFileInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

ROOT = Path(__file__).resolve().parent.parent

PAGE = "prediction"
TOP5_KEY = "pred_chart_0"  # the key of the first photo's top-5 chart on the Prediction page
UPLOADER_LABEL = "Upload photos"
PASSWORD = "bench-teacher"


# ---- one simulated student ----------------------------------------------------------------------


@dataclass
class RunResult:
    seconds: float
    error: str = ""
    elements: list[str] = field(default_factory=list)
    full: bool = False  # the whole page ran to its end (not only a fragment: a poll that reran the app)
    alerts: list[str] = field(default_factory=list)  # the text of every st.error/warning/info/success drawn


class Student:
    """A browser tab reduced to its protocol: one websocket, reruns, uploads, fragment polling."""

    def __init__(self, base_url: str, page: str = PAGE, address: str | None = None):
        self.base_url = base_url
        self.page = page
        self.address = address  # another computer (X-Forwarded-For, trusted from 127.0.0.1 only); None: this one
        self.widgets: dict[str, object] = {}  # user key -> the widget element last drawn with that key
        self.ws = None
        self.session_id = ""
        self.page_hash = ""
        self.query = ""
        self.uploader_id = ""
        self.uploader_fragment = ""  # the st.fragment the uploader is drawn in ("" when none): a change reruns only it
        self.uploaders: dict[str, tuple[str, str]] = {}  # label -> (widget id, fragment id) of every file uploader
        self.fragments: dict[str, float] = {}  # fragment id -> run_every interval
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.reader: asyncio.Task | None = None
        self.busy = False
        self.full_reruns: list[float] = []  # time.monotonic() of each poll that reran the whole page
        self.polls = 0  # fragment reruns sent

    async def connect(self) -> None:
        url = self.base_url.replace("http://", "ws://") + "/_stcore/stream"
        headers = {"X-Forwarded-For": self.address} if self.address else {}
        self.ws = await websockets.connect(url, subprotocols=["streamlit"], max_size=None, open_timeout=60,
                                           additional_headers=headers)  # fmt: skip
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                msg = ForwardMsg()
                msg.ParseFromString(raw)
                await self.inbox.put(msg)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()

    async def _send(self, back: BackMsg) -> None:
        await self.ws.send(back.SerializeToString())

    async def rerun(
        self, widgets: list[WidgetState] | None = None, fragment_id: str = "", timeout: float = 120, auto: bool = True
    ) -> RunResult:
        """Send a rerun and wait for its script_finished; collects element types and exceptions.

        fragment_id: rerun only that fragment, as the browser does for its run_every (auto) or for a
        widget drawn inside it (auto=False).
        """
        back = BackMsg()
        state = back.rerun_script
        state.query_string = self.query
        state.page_name = self.page if not self.page_hash else ""
        state.page_script_hash = self.page_hash
        if fragment_id:
            state.fragment_id, state.is_auto_rerun = fragment_id, auto
        for widget in widgets or []:
            state.widget_states.widgets.append(widget)
        self.widgets.clear()  # this run draws them again (a finished training swaps its buttons)
        start = time.perf_counter()
        await self._send(back)
        result = RunResult(0.0)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                result.error = "timeout"
                break
            try:
                msg = await asyncio.wait_for(self.inbox.get(), left)
            except TimeoutError:
                result.error = "timeout"
                break
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                self.session_id = msg.new_session.initialize.session_id or self.session_id
                self.page_hash = msg.new_session.page_script_hash or self.page_hash
            elif kind == "navigation" and msg.navigation.page_script_hash:
                # the page st.navigation ran: later reruns must name it (new_session names app.py's
                # hash, which st.navigation resolves to the default page, Data)
                self.page_hash = msg.navigation.page_script_hash
            elif kind == "page_info_changed":
                self.query = msg.page_info_changed.query_string
            elif kind == "auto_rerun":
                self.fragments[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                etype = element.WhichOneof("type")
                result.elements.append(etype)
                if etype == "exception":
                    result.error = f"exception: {element.exception.message[:120]}"
                elif etype == "plotly_chart" and element.plotly_chart.id.endswith(TOP5_KEY):
                    result.elements.append(TOP5_KEY)
                elif etype == "alert":
                    result.alerts.append(element.alert.body)
                elif etype == "file_uploader":
                    self.uploaders[element.file_uploader.label] = (element.file_uploader.id, msg.delta.fragment_id)
                    if element.file_uploader.label.startswith(UPLOADER_LABEL):
                        self.uploader_id = element.file_uploader.id
                        self.uploader_fragment = msg.delta.fragment_id
                if etype in ("button", "number_input", "checkbox", "text_input", "selectbox", "button_group"):
                    widget = getattr(element, etype)
                    self.widgets[widget.id.rsplit("-", 1)[-1]] = widget
            elif kind == "script_finished":
                status = msg.script_finished
                if status == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    continue  # the app reran itself (first visit, or a fragment's st.rerun): wait for the real end
                result.full = status == ForwardMsg.FINISHED_SUCCESSFULLY
                if fragment_id or status != ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                    break
        result.seconds = time.perf_counter() - start
        return result

    async def upload(self, name: str, data: bytes, timeout: float = 60, label: str = "") -> WidgetState:
        """Ask for an upload URL, PUT the file there, and return the uploader's new widget state.

        label: the file uploader's label (default: Prediction's); RuntimeError when the server refuses the PUT.
        """
        request_id = uuid.uuid4().hex
        back = BackMsg()
        back.file_urls_request.CopyFrom(
            FileURLsRequest(request_id=request_id, file_names=[name], session_id=self.session_id)
        )
        await self._send(back)
        deadline = time.monotonic() + timeout
        urls = None
        while urls is None:
            msg = await asyncio.wait_for(self.inbox.get(), max(0.1, deadline - time.monotonic()))
            if msg.WhichOneof("type") == "file_urls_response" and msg.file_urls_response.response_id == request_id:
                urls = msg.file_urls_response.file_urls[0]
        await asyncio.to_thread(put_file, self.base_url, urls.upload_url, name, data)
        info = UploadedFileInfo(name=name, size=len(data), file_id=urls.file_id,
                                file_urls=FileURLs(file_id=urls.file_id, upload_url=urls.upload_url, delete_url=urls.delete_url))  # fmt: skip
        widget_id = self.uploaders[label][0] if label else self.uploader_id
        return WidgetState(id=widget_id, file_uploader_state_value=FileUploaderState(uploaded_file_info=[info]))

    async def poll(self, stop: asyncio.Event, timeout: float) -> int:
        """Answer the fragments' run_every like a browser, while the student is not mid-prediction."""
        polls, deadline = 0, time.monotonic() + timeout
        while not stop.is_set() and time.monotonic() < deadline and self.fragments:
            interval = min(self.fragments.values())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if stop.is_set():
                break
            if not self.busy:
                for fragment_id in list(self.fragments):
                    self.polls += 1
                    self.busy = True
                    result = await self.rerun(fragment_id=fragment_id, timeout=max(1.0, deadline - time.monotonic()))
                    self.busy = False
                    polls += 1
                    if result.full:
                        self.full_reruns.append(time.monotonic())
        return polls


def put_file(base_url: str, upload_url: str, name: str, data: bytes) -> None:
    """PUT one file as multipart/form-data, as the browser's uploader does."""
    host = base_url.split("//", 1)[1]
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()  # fmt: skip
    conn = http.client.HTTPConnection(host, timeout=60)
    path = upload_url if upload_url.startswith("/") else "/" + upload_url.split("/", 3)[-1]
    conn.request("PUT", path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    response = conn.getresponse()
    said = response.read()[:200].decode(errors="replace")
    conn.close()
    if response.status >= 300:  # the status stays the message's last word (bench.abuse reads it)
        raise RuntimeError(f"upload failed ({said!r}): HTTP {response.status}")


def photo(seed: int) -> bytes:
    """A distinct 1024×768 JPEG per student (no cache shares a result between students or rounds:
    each round draws from its own seeds, or the Grad-CAM and prediction caches would answer)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((1024, 768), Image.BILINEAR)
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=85)
    return buf.getvalue()


# ---- the server and the measurement ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")


def niced_cpu(pids: list[int], nice: int = 10) -> float:
    """User + system CPU seconds of the threads of pids running at nice >= nice (the training's, see ui/frame.py
    and core/teach/worker.py: a laptop training's script thread in the server, every thread of the worker process)."""
    total = 0.0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the thread ended meanwhile
            if int(stat[16]) >= nice:
                total += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return total


def worker_pid(data: Path) -> int | None:
    """The job worker's pid from its heartbeat file (class mode), or None."""
    from core.teach import worker

    info = worker.worker_info(data)
    return int(info["pid"]) if info and info.get("pid") else None


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_server(
    data: Path,
    images: Path,
    class_mode: bool = True,
    root: Path = ROOT,
    extra_env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen, str]:
    """The real server on 127.0.0.1: class mode (teacher password, no worker of its own) or laptop mode.

    root: the checkout whose app.py it serves (--compare: the app before a change, beside this one).
    """
    port = free_port()
    env = dict(os.environ, PETLAB_DATA=str(data), PETLAB_DATASET=str(images), PETLAB_LOCAL_WORKER="0")
    env.pop("PETLAB_TEACHER_PASSWORD", None)
    env.update(extra_env or {})
    if class_mode:
        env["PETLAB_TEACHER_PASSWORD"] = PASSWORD
    log = open(data / f"server-{port}.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.address",
         "127.0.0.1", "--server.port", str(port), "--server.enableXsrfProtection", "false",
         "--browser.gatherUsageStats", "false"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(Path(log.name).read_text()[-2000:])
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the server did not start in 120 s")


@dataclass
class Round:
    students: int
    mode: str
    times: list[float]
    errors: list[str]
    cpu_per_prediction: float
    mb_per_session: float
    polls: int
    polling: int  # students whose page registered a run_every fragment
    training_cpu: float = 0.0  # CPU seconds the training's (niced) threads got during the round
    seconds: float = 0.0  # the round's wall time, from the first rerun sent to the last result
    load: float = float("nan")  # 1-minute load average as the round started (this bench's own work included)

    def pct(self, q: float) -> float:
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


async def run_round(
    url: str | list[str],
    pid: int | list[int],
    n: int,
    mode: str,
    timeout: float,
    poll: bool,
    seed: int,
    training: Callable[[], bool] = bool,
    trainer_pids: Callable[[], list[int]] = list,
) -> Round:
    """N students open Prediction, then all upload their photo at once; one prediction each."""
    urls, pids = (url if isinstance(url, list) else [url]), (pid if isinstance(pid, list) else [pid])
    load = os.getloadavg()[0]
    rss_before = sum(map(proc_rss_mb, pids))
    students = [Student(urls[i % len(urls)]) for i in range(n)]  # sticky: a student keeps one server
    errors: list[str] = []
    await asyncio.gather(*(s.connect() for s in students))
    opened = await asyncio.gather(*(s.rerun(timeout=timeout) for s in students))
    errors += [f"open: {r.error}" for r in opened if r.error]
    photos = [photo(seed + i) for i in range(n)]
    states = await asyncio.gather(*(s.upload(f"student{i}.jpg", photos[i]) for i, s in enumerate(students)))
    stop = asyncio.Event()
    pollers = [asyncio.create_task(s.poll(stop, timeout)) for s in students] if poll else []
    cpu_before = sum(map(proc_cpu, pids))
    trainers = trainer_pids()
    train_cpu_before, started = niced_cpu(trainers), time.perf_counter()
    trained_before = training()

    async def predict(student: Student, state: WidgetState) -> RunResult:
        student.busy = True
        result = await student.rerun([state], fragment_id=student.uploader_fragment, timeout=timeout, auto=False)
        student.busy = False
        if not result.error and TOP5_KEY not in result.elements:
            result.error = "no top-5 chart"
        return result

    results = await asyncio.gather(*(predict(s, st) for s, st in zip(students, states, strict=True)))
    cpu = sum(map(proc_cpu, pids)) - cpu_before
    train_cpu, seconds = niced_cpu(trainers) - train_cpu_before, time.perf_counter() - started
    if mode == "training" and not (trained_before and training()):
        errors.append("the training was not running for the whole round")
    rss_after = sum(map(proc_rss_mb, pids))
    stop.set()
    polls = sum(await asyncio.gather(*pollers)) if pollers else 0
    await asyncio.gather(*(s.close() for s in students))
    errors += [r.error for r in results if r.error]
    polling = sum(1 for s in students if s.fragments)
    times = [r.seconds for r in results if not r.error]
    return Round(
        n, mode, times, errors, cpu / n, (rss_after - rss_before) / n, polls, polling, train_cpu, seconds, load
    )


WAVE_S = 30.0  # a change not shown by then is not live (an app before issue 19 never reruns by itself)


@dataclass
class LiveRound:
    students: int
    idle_seconds: float
    idle_polls: int
    idle_cpu: float  # server CPU seconds while every tab polled and nothing changed
    idle_full: int  # whole-page reruns while nothing changed (should be 0)
    reached: int  # tabs whose page reran after the change
    latencies: list[float]  # seconds from the change to each tab's rerun
    wave_cpu: float  # server CPU seconds from the change until every tab reran (and its polls)
    wave_seconds: float
    load: float

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


async def live_round(url: str, pid: int, data: Path, images: Path, n: int, idle: float, timeout: float) -> LiveRound:
    """N tabs open a page and poll like browsers (the sidebar's run_every fragment) for `idle` seconds with nothing
    changing; then the teacher changes the class dataset (core API, as the Class page does) and each tab's
    poll reruns its page: when, and at what server CPU cost."""
    from core.auth import TEACHER, Identity
    from core.data.pets import pets_spec
    from core.teach import classroom

    load = os.getloadavg()[0]
    students = [Student(url) for _ in range(n)]
    await asyncio.gather(*(s.connect() for s in students))
    opened = await asyncio.gather(*(s.rerun(timeout=timeout) for s in students))
    if any(r.error for r in opened):
        raise RuntimeError(f"open failed: {[r.error for r in opened if r.error][:3]}")
    stop = asyncio.Event()
    pollers = [asyncio.create_task(s.poll(stop, idle + timeout)) for s in students]
    await asyncio.sleep(5.0)  # every tab has polled once (its first poll reads the job records)
    if not all(s.fragments for s in students):
        raise RuntimeError(f"{sum(1 for s in students if not s.fragments)} tabs have no polling fragment")
    cpu0, full0, polls0 = proc_cpu(pid), sum(len(s.full_reruns) for s in students), sum(s.polls for s in students)
    await asyncio.sleep(idle)
    idle_cpu = proc_cpu(pid) - cpu0
    idle_polls = sum(s.polls for s in students) - polls0
    idle_full = sum(len(s.full_reruns) for s in students) - full0
    before = [len(s.full_reruns) for s in students]
    cpu1, changed = proc_cpu(pid), time.monotonic()
    classroom.set_class_dataset(data, Identity(TEACHER, "bench"), pets_spec(images))
    deadline = changed + min(timeout, WAVE_S)
    while time.monotonic() < deadline and any(len(s.full_reruns) <= b for s, b in zip(students, before, strict=True)):
        await asyncio.sleep(0.1)
    wave_seconds = time.monotonic() - changed
    wave_cpu = proc_cpu(pid) - cpu1
    latencies = [s.full_reruns[b] - changed for s, b in zip(students, before, strict=True) if len(s.full_reruns) > b]
    stop.set()
    await asyncio.gather(*pollers)
    await asyncio.gather(*(s.close() for s in students))
    return LiveRound(n, idle, idle_polls, idle_cpu, idle_full, len(latencies), latencies, wave_cpu, wave_seconds, load)


def start_training(data: Path, images: Path) -> str:
    """Queue a long training and start the worker; returns the job id once it trains."""
    from core.auth import TEACHER, Identity
    from core.data.datasets import scan_dataset
    from core.data.pets import pets_spec
    from core.store.records import RunConfig, StageConfig
    from core.teach import job_records, jobs, worker

    scan = scan_dataset(pets_spec(images))
    config = RunConfig(dataset=scan.fingerprint, img_size=64, bs=16, stages=(StageConfig(epochs=500, lr_max=1e-3),))
    record = jobs.submit(data, Identity(TEACHER, "bench"), config, scan.spec)
    worker.ensure_worker(data)
    deadline = time.time() + 300
    while time.time() < deadline:
        if job_records.load_job(data, record.job_id).last is not None:
            return record.job_id
        time.sleep(1)
    raise RuntimeError("the training job did not start in 300 s")


TRAIN_EPOCHS = 50  # the page's maximum: one training outlasts a round (it is started again if not)


async def laptop_teacher(url: str, stop: threading.Event, timeout: float) -> int:
    """Laptop mode (no job queue): a teacher tab trains on the Training page, in its own script thread.

    It asks for stage 1 with full backprop through the frozen body (not the cached-features shortcut)
    for TRAIN_EPOCHS epochs, starts it again when it ends, and closes its tab when told to stop
    (Streamlit then stops the training within a few seconds, nothing saved). Returns the trainings started.
    """
    teacher = Student(url, page="training")
    await teacher.connect()
    trainings, deadline = 0, time.monotonic() + timeout
    try:
        await teacher.rerun(timeout=max(1.0, deadline - time.monotonic()))
        while not stop.is_set() and time.monotonic() < deadline:
            button = teacher.widgets.get("train_go1") or teacher.widgets.get("train_retrain1")
            if button is None or button.disabled:  # another training still holds the lock: look again
                await asyncio.sleep(2)
                await teacher.rerun(timeout=max(1.0, deadline - time.monotonic()))
                continue
            states = [
                WidgetState(id=teacher.widgets["train_epochs1"].id, int_value=TRAIN_EPOCHS),
                WidgetState(id=teacher.widgets["train_fast"].id, bool_value=False),
                WidgetState(id=button.id, trigger_value=True),
            ]
            training = asyncio.create_task(teacher.rerun(states, timeout=max(1.0, deadline - time.monotonic())))
            trainings += 1
            while not training.done() and not stop.is_set():
                await asyncio.sleep(0.5)
            if not training.done():
                training.cancel()
                break
    finally:
        await teacher.close()
    return trainings


def laptop_training_running(data: Path) -> bool:
    from core.store import training_lock

    return training_lock.training_running(data / "runs")


def start_laptop_training(url: str, data: Path, timeout: float) -> tuple[threading.Thread, threading.Event]:
    """Start the laptop-mode teacher in a thread of its own; returns once the server holds the training lock."""
    from core.store import training_lock

    stop, failure = threading.Event(), []

    def teach() -> None:
        try:
            asyncio.run(laptop_teacher(url, stop, timeout))
        except Exception as err:  # noqa: BLE001 - reported by the caller below
            failure.append(repr(err))

    thread = threading.Thread(target=teach, daemon=True)
    thread.start()
    deadline = time.time() + 300
    while time.time() < deadline:
        if training_lock.training_running(data / "runs"):
            return thread, stop
        if not thread.is_alive():
            break
        time.sleep(1)
    stop.set()
    raise RuntimeError(f"the laptop-mode training did not start: {failure or 'see server.log'}")


def stop_training(data: Path, job_id: str) -> None:
    from core.auth import TEACHER, Identity
    from core.teach import job_records, jobs, worker

    with contextlib.suppress(job_records.JobError):
        jobs.stop_job(data, Identity(TEACHER, "bench"), job_id)
    worker.stop_worker(data, timeout=60)


def finished_jobs(data: Path, images: Path, n: int) -> None:
    """n finished training jobs in the queue's records, as after a lesson (what every poll used to read)."""
    from core.data.datasets import scan_dataset
    from core.data.pets import pets_spec
    from core.teach import job_records
    from core.teach.jobs import lesson_plan

    scan = scan_dataset(pets_spec(images))
    plan = lesson_plan(scan.fingerprint, img_size=32)
    for i in range(n):
        config = plan[i % len(plan)][1]
        record = job_records.JobRecord(
            job_id=f"bench{i:04d}", title=config.title(), config=config, dataset=scan.spec, status="done",
            queued_by="teacher:bench", created=time.time() - 3600 + i, started=1.0, finished=2.0, run_id="0" * 16,
        )  # fmt: skip
        job_records.save_job(data, record)


def measure_live(url: str, pid: int, data: Path, images: Path, args, before=None, before_data=None) -> None:
    """--live: what live pages cost the server (idle polling, then one class-wide change) for each N, one run.

    before: (process, url) of the --compare checkout's server, measured the same way just before each round here.
    """
    targets = [("this", url, pid, data)]
    if before is not None:
        targets.insert(0, ("before", before[1], before[0].pid, before_data))

    async def warm_up(address: str) -> None:  # a fresh server runs its first deep-linked sessions without app.py
        student = Student(address)
        await student.connect()
        await student.rerun(timeout=args.timeout)
        await student.close()

    for _name, address, _pid, folder in targets:
        finished_jobs(folder, images, args.jobs)
        asyncio.run(warm_up(address))
    print(f"live pages: {args.jobs} finished jobs in the queue, polling every 3 s (ui/jobs.py POLL_SECONDS)")
    for n, (name, address, server_pid, folder) in ((n, t) for n in args.students for t in targets):
        r = asyncio.run(live_round(address, server_pid, folder, images, n, args.live, args.timeout))
        per_s = r.idle_polls / r.idle_seconds
        print(f"{name:6s} {n:3d} tabs (load {r.load:.1f}): idle {per_s:.1f} polls/s, server CPU {r.idle_cpu / r.idle_seconds:.1%} "
              f"of a core ({1000 * r.idle_cpu / max(1, r.idle_polls):.1f} ms per poll), {r.idle_full} page reruns; "
              f"a class change reached {r.reached}/{n} tabs: p50 {r.pct(0.5):.1f} s  p95 {r.pct(0.95):.1f} s  "
              f"max {max(r.latencies, default=float('nan')):.1f} s; the wave cost {r.wave_cpu:.1f} CPU s "
              f"({r.wave_cpu / max(1, r.reached):.2f} s per tab) over {r.wave_seconds:.1f} s", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--training", action="store_true", help="also measure each N while a training job runs")
    parser.add_argument("--no-poll", dest="poll", action="store_false", help="leave out the job box's polling")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds each round may take")
    parser.add_argument(
        "--servers",
        type=int,
        default=1,
        help="server processes on one data folder, students spread over them (what a sticky proxy does)",
    )
    parser.add_argument(
        "--laptop",
        action="store_true",
        help="no teacher password: training runs in a teacher tab's script thread on the server (the default "
        "where this checkout has no job queue, core/teach/jobs.py)",
    )
    parser.add_argument(
        "--live",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="class mode: measure live pages instead: N tabs poll for SECONDS with nothing changing, then the class "
        "dataset changes and every tab's page reruns (issue 19); with --jobs finished jobs in the queue",
    )
    parser.add_argument("--jobs", type=int, default=30, help="--live: finished job records in the queue (a lesson's)")
    parser.add_argument(
        "--compare",
        type=Path,
        default=None,
        metavar="CHECKOUT",
        help="--live: also serve this checkout (e.g. `git worktree add /tmp/before <commit>`) on its own data folder "
        "and measure it in the same run, round by round",
    )
    args = parser.parse_args()
    laptop = args.laptop or importlib.util.find_spec("core.teach.jobs") is None

    from core.data.synthetic import make_pets_like

    work = Path(tempfile.mkdtemp(prefix="petlab-class-load-"))
    data = work / "data"
    data.mkdir()
    images = make_pets_like(work / "pets" / "images", n_per_class=8)
    servers = [start_server(data, images, class_mode=not laptop) for _ in range(args.servers)]
    url, urls, pids = servers[0][1], [u for _, u in servers], [p.pid for p, _ in servers]
    print(f"{'laptop' if laptop else 'class'} mode, {len(servers)} server process(es): pids {pids}; "
          f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)  # fmt: skip
    rounds: list[Round] = []
    if args.live:
        if args.compare:
            (work / "before").mkdir()
            servers.append(start_server(work / "before", images, root=args.compare.resolve()))
        try:
            measure_live(urls[0], pids[0], data, images, args, servers[1] if args.compare else None, work / "before")
        finally:
            for proc, _ in servers:
                proc.terminate()
                proc.wait(timeout=20)
            shutil.rmtree(work, ignore_errors=True)
        return
    try:
        warm_n = min(args.students)  # the first round pays one-time costs (model load, first backward, caches)
        warm = asyncio.run(run_round(urls, pids, warm_n * len(urls), "warm-up", args.timeout, False, 10_000))
        print(f"warm-up (first run, model load): {warm.times} errors {warm.errors}", flush=True)
        modes = ["idle", "training"] if args.training else ["idle"]
        for mode in modes:
            job = teacher = None
            # laptop: the training lock; class mode: start_training saw the job train, and 500 epochs outlast the rounds
            busy = partial(laptop_training_running, data) if laptop else (lambda: True)
            # whose niced threads are the training: the server's (laptop) or the worker process's (class mode)
            trainers = (lambda: pids) if laptop else (lambda: [p for p in [worker_pid(data)] if p])
            if mode == "training" and laptop:
                teacher = start_laptop_training(url, data, timeout=args.timeout * (len(args.students) + 1))
            elif mode == "training":
                job = start_training(data, images)
            try:
                for n in args.students:
                    result = asyncio.run(
                        run_round(
                            urls, pids, n, mode, args.timeout, args.poll, 1000 * (len(rounds) + 1), busy, trainers
                        )
                    )
                    rounds.append(result)
                    print(f"{mode:8s} {n:3d} students: p50 {result.pct(0.5):.2f} s  p95 {result.pct(0.95):.2f} s  "
                          f"max {max(result.times, default=float('nan')):.2f} s  errors {len(result.errors)}  "
                          f"cpu/prediction {result.cpu_per_prediction:.3f} s  +{result.mb_per_session:.1f} MB/session  "
                          f"polls {result.polls} ({result.polling} polling)  load {result.load:.1f}", flush=True)  # fmt: skip
                    if mode == "training":
                        print(f"    the training's threads got {result.training_cpu:.2f} CPU s in the round's "
                              f"{result.seconds:.2f} s ({result.training_cpu / max(result.seconds, 1e-9):.0%} of a core)"
                              + (f"; server CPU per prediction less the training's "
                                 f"{result.cpu_per_prediction - result.training_cpu / n:.3f} s" if teacher else ""))  # fmt: skip
                    for err in sorted(set(result.errors))[:3]:
                        print(f"    error: {err}")
            finally:
                if job:
                    stop_training(data, job)
                if teacher:
                    thread, stop = teacher
                    stop.set()
                    thread.join(timeout=60)
        print(f"server RSS at the end: {sum(map(proc_rss_mb, pids)):.0f} MB")
        by = {(r.mode, r.students): r for r in rounds}
        for n in args.students:
            if ("idle", n) in by and ("training", n) in by:
                ratio = by[("training", n)].pct(0.95) / by[("idle", n)].pct(0.95)
                print(f"p95 training / idle at {n} students: {ratio:.2f}x (goal <= 1.5x)")
    finally:
        for proc, _ in servers:
            proc.terminate()
        for proc, _ in servers:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
