"""The real thing: `streamlit run app.py` on 127.0.0.1, driven by Playwright in Debian's chromium."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def run_protocol(coro):
    """Run a websocket-protocol coroutine to its end, in a thread of its own.

    Playwright's sync API keeps an event loop running in the test thread once a browser test has run, and
    asyncio.run() refuses to start inside it: a protocol test would then fail or pass by the order tests ran in.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_browser_data(base: Path, n_per_class: int = 12) -> tuple[Path, Path]:
    """An empty data folder `base/petlab-data` and a generated Pets-shaped dataset `base/pets/images`."""
    from core.data.synthetic import make_pets_like

    data = base / "petlab-data"
    data.mkdir()
    images = make_pets_like(base / "pets" / "images", n_per_class=n_per_class)
    return data, images


@pytest.fixture(scope="session")
def browser_data(tmp_path_factory):
    """The browser session's data folder and generated Pets-shaped dataset."""
    return make_browser_data(tmp_path_factory.mktemp("browser"))


def env_dataset_for(images: Path):
    """The DatasetSpec the server makes of PETLAB_DATASET=images (runs stored for it are offered by the pickers)."""
    from ui.state import env_dataset

    saved = os.environ.get("PETLAB_DATASET")
    os.environ["PETLAB_DATASET"] = str(images)
    try:
        return env_dataset()
    finally:
        if saved is None:
            os.environ.pop("PETLAB_DATASET")
        else:
            os.environ["PETLAB_DATASET"] = saved


@contextlib.contextmanager
def streamlit_server(data: Path, images: Path | None, extra_env: dict[str, str] | None = None):
    """Run `streamlit run app.py` on a free loopback port until the block ends; yields its base URL.

    Args:
        images: the default dataset ($PETLAB_DATASET); None starts the app as a teacher first sees it.
        extra_env: more environment for the server (e.g. $PETLAB_FOLDERS).
    """
    port = _free_port()
    env = dict(os.environ, PETLAB_DATA=str(data))
    # the folders a student may open: pytest's base folder, where every test makes its datasets
    env["PETLAB_FOLDERS"] = str(data.parent.parent)
    env.update(extra_env or {})
    env.pop("TORCH_HOME", None)
    env.pop("PETLAB_DATASET", None)
    if images is not None:
        env["PETLAB_DATASET"] = str(images)
    with open(data / f"streamlit-{port}.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 90
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"streamlit exited: {Path(log.name).read_text()[-2000:]}")
                if time.time() > deadline:
                    raise RuntimeError("streamlit did not become healthy in 90 s")
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def app_server(browser_data):
    """The app as a user would start it, shared by the browser tests; stopped at the end."""
    data, images = browser_data
    with streamlit_server(data, images) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium through the PyPI playwright package (never `playwright install`)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is missing: `make test` installs it with apt-get.")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()


def new_tab(browser):
    """A tab in a fresh browser context (its own cookies and storage), 1400×1000, with long timeouts
    for a 2-core machine; returns (context, tab): close the context when done."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(120_000)
    return context, tab


@pytest.fixture
def page(browser):
    """A fresh tab (see new_tab)."""
    context, tab = new_tab(browser)
    yield tab
    context.close()


# The app's own run state, as Streamlit's e2e tests read it. The "Running…" status widget alone is no signal:
# Streamlit shows it only after 500 ms of running, so a check made in a run's first 500 ms passed too early.
APP_IDLE = """() => {
  const app = document.querySelector("[data-testid='stApp']");
  return app !== null && app.getAttribute("data-test-script-state") === "notRunning"
    && !document.querySelector("[data-testid='stStatusWidget'], [data-stale='true']");
}"""


def wait_ready(tab) -> None:
    """Wait until Streamlit has finished running the script: the app says it is not running, no 'Running…'
    status widget, no element left stale from the previous run."""
    tab.wait_for_selector("[data-testid='stApp']")
    tab.wait_for_function(APP_IDLE, timeout=180_000, polling=250)


def assert_no_exception(tab) -> None:
    """No traceback box anywhere in the page."""
    errors = tab.locator("[data-testid='stException']")
    assert errors.count() == 0, errors.first.inner_text()


def broken_words(tab) -> list[str]:
    """Words the browser split across two lines in the main area's image captions and st.caption (mid-word).

    A word is a run of Latin letters, digits and code punctuation (pad_mode='reflection', 1.45e-03);
    Chinese text may wrap between any two characters, so it is not a word here. A zero-width space is a
    break a caption offers on purpose.
    """
    return tab.evaluate(
        """() => {
            const words = /[A-Za-z0-9_.,:;=()'"\\[\\]{}<>+#%\\/-]+/g, out = [];
            const boxes = document.querySelectorAll(["[data-testid='stMain'] [data-testid='stImageCaption']",
                "[data-testid='stMain'] [data-testid='stCaptionContainer']"].join(","));
            for (const box of boxes) {
                if (!box.getClientRects().length) continue;
                const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
                for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                    if (node.parentElement.closest('code')) continue;  // a path in code may wrap anywhere
                    for (const m of node.textContent.matchAll(words)) {
                        const range = document.createRange();
                        range.setStart(node, m.index);
                        range.setEnd(node, m.index + m[0].length);
                        const tops = new Set([...range.getClientRects()].filter(r => r.width > 0)
                            .map(r => Math.round(r.top)));
                        if (tops.size > 1) out.push(m[0]);
                    }
                }
            }
            return out;
        }"""
    )


def screenshot(tab, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="session")
def fashion_images(tmp_path_factory) -> Path:
    """A real image dataset as a teacher has it: Fashion-MNIST photos as files `Ankle_boot_12.png`, 30 per class.

    Read offline from Debian's dataset-fashion-mnist (`make test` installs it), 28 px greyscale, 300 files.
    """
    from bench.train_speed import FASHION_DIR, write_fashion

    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail("Debian's dataset-fashion-mnist is missing: `make test` installs it with apt-get.")
    return write_fashion(tmp_path_factory.mktemp("teacher") / "fashion", per_class=30)


def sign_in_browser(context, url: str, data: Path, password: str) -> None:
    """Give a browser context the teacher's sign-in cookie, as signing in there would (core.auth.start_sign_in)."""
    from core import auth

    _sign_in_id, cookie = auth.start_sign_in(data, password)
    context.add_cookies([{"name": auth.SIGN_IN_COOKIE, "value": cookie, "url": url}])
