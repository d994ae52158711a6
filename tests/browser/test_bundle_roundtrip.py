"""Browser: a lesson prepared on one machine is taught on another (issue 17).

`make prepare` on a tiny offline lesson (a local Pets-shaped folder, mobilenet_v2 at 64 px, one frozen run,
its cached features and top-patch indexes) with bf16 training forced, as a GPU or a CPU with native bf16
trains; `make bundle`; `make import` into an empty data folder with fp32 forced, as a CPU without bf16
runs. Then the app on that folder, in a real browser: the Training page opens the prepared run as already
trained with Fast on, and the LR finder trains on the prepared features (no extraction, the cache folder
untouched). Every prepared file is used, not listed: the run's record (the per-epoch table), its
predictions (Interpretation, the same error rate as the Training page), its weights (Prediction), the
features (the LR finder) and the patch index (Layers shows the top patches with nothing to build).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import expect

from core.data.synthetic import make_pets_like
from tests.browser.conftest import ROOT, screenshot, streamlit_server, wait_ready
from tests.browser.test_lesson_walk import epochs_rows, go_to, points, settle, stage_errors

pytestmark = pytest.mark.browser

N_PER_CLASS = 12  # 6 breeds: 72 images, so the Layers page's default scan (every image) is the prepared one
PREP_ARGS = "--archs mobilenet_v2 --runs resnet34-frozen --run-arch mobilenet_v2 --size 64 --bs 16 --epochs 2"


def make(target: str, data: Path, precision: str, *variables: str) -> str:
    """`make <target>` as a teacher types it, with this data folder and precision; returns its output."""
    env = {k: v for k, v in os.environ.items() if k not in ("TORCH_HOME", "PETLAB_DATASET", "PETLAB_FOLDERS")}
    env.update(PETLAB_DATA=str(data), PETLAB_PRECISION=precision)
    done = subprocess.run(["make", "-s", target, *variables], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert done.returncode == 0, f"make {target} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under folder with its size and modification time (to see that nothing was rewritten)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    """A lesson prepared (bf16) and bundled at 'home', imported (fp32) into an empty classroom data folder."""
    base = tmp_path_factory.mktemp("roundtrip")
    source = base / "download" / "oxford-iiit-pet"
    make_pets_like(source / "images", n_per_class=N_PER_CLASS)
    home, room, bundle = base / "home", base / "classroom", base / "petlab-class.tar"
    prepared = make("prepare", home, "bf16", f"PREP_ARGS={PREP_ARGS} --local {source}")
    assert "0 failed" in prepared, prepared
    assert any((home / "features").iterdir()) and any((home / "patch_index").iterdir())
    make("bundle", home, "bf16", f"OUT={bundle}")
    room.mkdir()
    imported = make("import", room, "fp32", f"BUNDLE={bundle}")
    assert "Imported into" in imported, imported
    return room


def test_a_prepared_lesson_is_taught_on_another_machine(classroom, page):
    room = classroom
    features_before = snapshot(room / "features")
    indexes_before = snapshot(room / "patch_index")
    with streamlit_server(room, None, {"PETLAB_PRECISION": "fp32"}) as url:
        page.set_viewport_size({"width": 1400, "height": 1400})
        page.goto(url)
        # the bundled images, found in the data folder (waited for: on a loaded machine the first run starts late)
        expect(page.locator("[data-testid='stSidebar']")).to_contain_text("Dataset: Oxford-IIIT Pet", timeout=120_000)
        settle(page)

        # ---- Training: the lesson's settings as prepared (augmentation on, lr_max 1e-3), Fast on ------------
        go_to(page, "Training", "Training: fine-tune a pretrained network")
        page.get_by_text("Augment training batches").click()
        settle(page)
        lr_box = page.get_by_label("lr_max", exact=True)
        lr_box.fill("1e-3")
        lr_box.press("Enter")
        settle(page)
        views = page.get_by_label("Augmented views per image")
        if views.input_value() != "2":  # the lesson prep caches 2 augmented views, as the page offers with augmentation
            views.fill("2")
            views.press("Enter")
            settle(page)
        assert page.get_by_role("switch", name="Fast: cached body features").is_checked()
        page.get_by_text("Already trained:").first.wait_for(timeout=60_000)
        page.get_by_text(re.compile(r"Trained the full fastai way \(as `?make prepare`? does\)")).first.wait_for()
        assert page.get_by_role("button", name="▶ Train stage 1 (frozen)").count() == 0
        screenshot(page, "roundtrip-already-trained")

        # the LR finder on the prepared features: a head trains on them, nothing is extracted or rewritten
        page.get_by_role("button", name="Run the LR finder").click()
        use_valley = page.get_by_role("button", name=re.compile(r"Use valley \(.+\) as lr_max"))
        use_valley.wait_for(timeout=120_000)
        settle(page)
        assert page.get_by_text(re.compile("training images, view|validation images")).count() == 0  # no extraction
        assert snapshot(room / "features") == features_before
        assert page.locator("[data-testid='stException']").count() == 0
        screenshot(
            page,
            "roundtrip-lr-finder",
        )

        # the prepared run itself: its record's per-epoch table
        page.get_by_role("button", name="Open it").first.click()
        settle(page)
        errors = stage_errors(epochs_rows(page))
        assert len(errors) == 1, errors
        trained = list(errors.values())[-1]

        # ---- Interpretation: the stored predictions give the Training page's error rate -----------------
        go_to(page, "Interpretation", "Interpretation: where does the model go wrong?")
        page.get_by_role("heading", name="Confusion matrix").wait_for()
        metric = page.locator("[data-testid='stMetric']").filter(has_text="error rate").first
        shown = points(metric.locator("[data-testid='stMetricValue']").inner_text())
        assert abs(shown - trained) < 0.01, f"Interpretation {shown} % vs Training {trained} %"
        screenshot(page, "roundtrip-interpretation")

        # ---- Layers: the prepared top-patch index, with nothing to build ------------------------------------
        go_to(page, "Layers", "Layers: what each layer sees")
        page.get_by_role("tab", name="Top patches").click()
        wait_ready(page)
        panel = page.locator("[data-testid='stTabPanel']:visible")
        page.wait_for_function(
            "() => [...document.querySelectorAll(\"[data-testid='stTabPanel']:not([hidden]) [data-testid='stImage'] img\")]"
            ".filter(i => i.complete && i.naturalWidth > 0).length >= 9",
            timeout=120_000,
            polling=500,
        )
        assert panel.get_by_role("button", name=re.compile("Build the index")).count() == 0
        assert snapshot(room / "patch_index") == indexes_before
        screenshot(page, "roundtrip-layers")

        # ---- Prediction: the run's weights on one of the bundled photos -------------------------------------
        go_to(page, "Prediction", "Prediction: what's your pet?")
        photo = sorted((room / "datasets" / "oxford-iiit-pet" / "images").glob("pug_*.jpg"))[0]
        page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(photo))
        page.locator("[data-testid='stMain'] [data-testid='stPlotlyChart']").first.wait_for(timeout=180_000)
        settle(page)
        verdict = page.locator("[data-testid='stMain']").locator("h3, [data-testid='stAlert']")
        assert verdict.filter(has_text=re.compile(r"— \d+%|Not sure\.")).count() >= 1
        assert page.locator("[data-testid='stException']").count() == 0
        screenshot(page, "roundtrip-prediction")
        log = next(room.glob("streamlit-*.log")).read_text()
        assert "Traceback" not in log, log[log.find("Traceback") :][:1500]
