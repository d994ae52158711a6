"""AppTest: the Prediction page with the offline ImageNet model and with a (tiny, untrained) fine-tuned run."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from core.data.pets import pets_spec
from core.data.synthetic import DEFAULT_CLASSES, draw_example
from core.nets.models import RECORD_FILE, WEIGHTS_FILE, create_model, save_weights
from core.settings import sub_dir
from core.storage import atomic_write_json
from ui.state import ACTIVE_DATASET, ACTIVE_RUN

TIMEOUT = 240
PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "prediction.py")


def jpeg(label_idx: int, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    draw_example(label_idx, np.random.default_rng(seed), (120, 100)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def run_id(data_folder) -> str:
    """A run folder in the format load_run_model reads: mobilenet_v2 head for the 6 Pets-like classes, 64 px."""
    torch.manual_seed(0)
    model = create_model("mobilenet_v2", len(DEFAULT_CLASSES), pretrained=False)
    folder = sub_dir("runs") / "testrun"
    folder.mkdir()
    save_weights(model, folder / WEIGHTS_FILE)
    record = {"arch": "mobilenet_v2", "classes": list(DEFAULT_CLASSES), "img_size": 64, "title": "test run",
              "config": {"dataset": "test", "stages": [{"epochs": 1, "lr_max": 1e-3}]}}  # fmt: skip
    atomic_write_json(folder / RECORD_FILE, record)
    return "testrun"


def test_imagenet_model_uploads_good_and_bad(pets_like):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.session_state["pred_gradcam"] = False
    at.run()
    assert not at.exception
    assert any("1000 ImageNet labels" in i.value for i in at.info)
    files = [
        ("cat.jpg", jpeg(0), "image/jpeg"),
        ("notes.txt", b"not an image at all", "text/plain"),
        ("dog.jpg", jpeg(3, seed=1), "image/jpeg"),
    ]
    at.file_uploader(key="pred_uploads").set_value(files).run()
    assert not at.exception
    assert len(at.error) == 1 and "notes.txt" in at.error[0].value  # the bad file, named
    assert len(at.get("plotly_chart")) == 2  # both good files still predicted
    assert [m.label for m in at.metric][:3] == ["inference time", "entropy", "energy"]
    assert any("Distance check off" in c.value for c in at.caption)


def test_run_model_predicts_dataset_classes_with_gradcam_and_distance(pets_like, run_id):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.session_state[ACTIVE_RUN] = run_id
    at.run()
    assert not at.exception
    assert "test run" in at.success[0].value
    assert not list(sub_dir("novelty").glob("*.npz"))  # no photo yet: nothing built
    at.file_uploader(key="pred_uploads").set_value(("pet.jpg", jpeg(2), "image/jpeg")).run()
    assert not at.exception
    caption = next(c.value for c in at.caption if "Distance check" in c.value)
    assert "Distance check on" in caption and "5th nearest of" in caption and "validation images" in caption
    cached = list(sub_dir("novelty").glob(f"{run_id}-*.npz"))
    assert len(cached) == 1  # the reference is on disk, keyed by run id
    chart = at.get("plotly_chart")[0]
    assert len(at.get("plotly_chart")) == 1
    images = at.get("image")
    assert len(images) == 2  # the photo and its Grad-CAM overlay
    text = " ".join(m.value for m in at.markdown) + " ".join(w.value for w in at.warning)
    assert any(c in text for c in DEFAULT_CLASSES)
    assert chart is not None
    assert "distance to training" in [m.label for m in at.metric]


def test_reference_is_read_from_disk_without_the_dataset(pets_like, run_id):
    """Once built, a run's reference works even when another dataset is active (it lives on disk)."""
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.session_state[ACTIVE_RUN] = run_id
    at.session_state["pred_gradcam"] = False
    at.run()
    at.file_uploader(key="pred_uploads").set_value(("pet.jpg", jpeg(2), "image/jpeg")).run()
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = None
    at.session_state[ACTIVE_RUN] = run_id
    at.session_state["pred_gradcam"] = False
    at.run()
    at.file_uploader(key="pred_uploads").set_value(("pet.jpg", jpeg(3), "image/jpeg")).run()
    assert not at.exception
    assert any("Distance check on" in c.value for c in at.caption)


def test_not_sure_when_threshold_is_unreachable(pets_like, run_id):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.session_state[ACTIVE_RUN] = run_id
    at.session_state["pred_min_prob"] = 1.0
    at.session_state["pred_gradcam"] = False
    at.run()
    at.file_uploader(key="pred_uploads").set_value(("pet.jpg", jpeg(1), "image/jpeg")).run()
    assert not at.exception
    assert any("Not sure" in w.value and "top probability" in w.value for w in at.warning)


def test_dataset_source_predicts_the_picked_image(pets_like, run_id):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.session_state[ACTIVE_RUN] = run_id
    at.session_state["pred_input"] = "Dataset or camera"
    at.session_state["pred_gradcam"] = False
    at.run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 1


def test_no_input_yet_says_what_to_do():
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = None
    at.session_state["pred_gradcam"] = False
    at.run()
    assert not at.exception
    assert any("Upload one or more photos" in i.value for i in at.info)


def test_a_rerun_does_not_predict_the_same_photo_again(pets_like, run_id, monkeypatch):
    from core.predict import prediction

    calls = []
    real = prediction.predict
    monkeypatch.setattr(prediction, "predict", lambda *a, **k: calls.append(1) or real(*a, **k))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.session_state[ACTIVE_RUN] = run_id
    at.session_state["pred_gradcam"] = False
    at.run()
    at.file_uploader(key="pred_uploads").set_value(("pet.jpg", jpeg(2, seed=7), "image/jpeg")).run()
    assert not at.exception and len(calls) == 1
    at.toggle(key="pred_gradcam").set_value(True).run()  # a rerun with the same photo: no new forward
    assert not at.exception and len(calls) == 1 and len(at.get("plotly_chart")) == 1
    at.file_uploader(key="pred_uploads").set_value(
        [("pet.jpg", jpeg(2, seed=7), "image/jpeg"), ("other.jpg", jpeg(4, seed=8), "image/jpeg")]
    ).run()
    assert not at.exception and len(calls) == 2  # only the new photo is predicted


def chart_labels(at: AppTest) -> tuple[str, ...]:
    """The class names on the page's top-5 charts (names stay as they are in every language)."""
    import json

    return tuple(y for chart in at.get("plotly_chart") for y in json.loads(chart.proto.spec)["data"][0]["y"])


@pytest.mark.parametrize("model", ["run", "imagenet"])
def test_prediction_page_in_chinese(pets_like, run_id, model):
    """?lang=zh: banner, rules, uploader, verdict with its reasons, metrics, chart and captions leave no English."""
    from tests.pages.test_i18n import assert_chinese_throughout
    from ui.i18n import LANG_PARAM

    pages = []
    for lang in ("zh", "en"):
        at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
        at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
        at.session_state[ACTIVE_RUN] = run_id if model == "run" else None
        at.session_state["pred_min_prob"] = 1.0  # a "not sure" verdict, with its reasons
        at.query_params[LANG_PARAM] = lang
        at.run()
        at.file_uploader(key="pred_uploads").set_value(("pet.jpg", jpeg(2), "image/jpeg")).run()
        pages.append(at)
    zh, en = pages
    names = ("test run", "pet.jpg", *chart_labels(zh), *chart_labels(en))
    assert_chinese_throughout(zh, en, allowed=names)
    assert zh.title[0].value == "🔮 预测：你的宠物是什么？"
    assert zh.warning[0].value.startswith("**不确定**。") and "最高概率" in zh.warning[0].value
    labels = [m.label for m in zh.metric]
    assert labels[:2] == ["推理时间", "熵"] and labels[2] in ("能量", "与训练集的距离")
    assert len(zh.get("image")) == 2  # the photo and its Grad-CAM overlay, captioned in Chinese


def test_a_plain_jpeg_is_shown_as_uploaded_anything_else_decoded():
    """st.image gets the uploaded JPEG bytes themselves (no re-encoding per rerun) only when decoding changed nothing."""
    from core.data.images import load_image_bytes
    from ui.prediction import shown_image

    data = jpeg(1)
    assert shown_image(data, load_image_bytes(data, "a.jpg")) is data
    buf = io.BytesIO()
    draw_example(1, np.random.default_rng(0), (120, 100)).save(buf, "PNG")
    png = load_image_bytes(buf.getvalue(), "a.png")
    assert shown_image(buf.getvalue(), png) is png.image
    big = io.BytesIO()
    draw_example(1, np.random.default_rng(0), (2400, 1800)).save(big, "JPEG")
    shrunk = load_image_bytes(big.getvalue(), "big.jpg")  # shrunk for speed: a note, so the decoded image
    assert shrunk.notes and shown_image(big.getvalue(), shrunk) is shrunk.image


def run_of(data_folder, pets_like, name: str = "ownrun", root=None) -> str:
    """A run trained (as its record says) on pets_like, with the dataset's spec recorded as training stores it."""
    torch.manual_seed(0)
    model = create_model("mobilenet_v2", len(DEFAULT_CLASSES), pretrained=False)
    folder = sub_dir("runs") / name
    folder.mkdir()
    save_weights(model, folder / WEIGHTS_FILE)
    spec = pets_spec(pets_like)
    dataset = {"name": spec.name, "kind": spec.kind, "root": str(root or spec.root), "label_from": spec.label_from,
               "pattern": spec.pattern, "match_on": spec.match_on, "valid_pct": spec.valid_pct, "seed": spec.seed,
               "fingerprint": "not-this-one"}  # fmt: skip
    record = {"arch": "mobilenet_v2", "classes": list(DEFAULT_CLASSES), "img_size": 64, "title": "own run",
              "config": {"dataset": "test", "stages": [{"epochs": 1, "lr_max": 1e-3}]}, "dataset": dataset}  # fmt: skip
    atomic_write_json(folder / RECORD_FILE, record)
    return name


def other_dataset(tmp_path):
    """A dataset with other classes than the run's: what a student's own classes are."""
    from core.data.datasets import DatasetSpec
    from core.data.synthetic import make_pets_like

    root = make_pets_like(tmp_path / "mine", n_per_class=4, classes=("bears", "kites"))
    return DatasetSpec(name="Your own classes", kind="own", root=str(root))


def test_not_sure_checks_against_the_runs_own_images_whatever_dataset_is_open(pets_like, data_folder, tmp_path):
    """Issue 19.1: with another dataset active (a student's own classes), the distance check still runs: the
    reference is the run's, built from the images its record names."""
    rid = run_of(data_folder, pets_like)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = other_dataset(tmp_path)
    at.session_state[ACTIVE_RUN] = rid
    at.session_state["pred_gradcam"] = False
    at.run()
    at.file_uploader(key="pred_uploads").set_value(("pet.jpg", jpeg(2), "image/jpeg")).run()
    assert not at.exception
    assert any("Distance check on" in c.value for c in at.caption)
    assert "distance to training" in [m.label for m in at.metric]
    assert not any("Distance check off" in w.value for w in at.warning)


def test_when_the_check_cannot_run_the_verdict_says_so(pets_like, data_folder, tmp_path):
    """Issue 19.1: the run's images are gone: each verdict says the distance check is off, not only the expander."""
    rid = run_of(data_folder, pets_like, name="goneimages", root=tmp_path / "deleted")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = other_dataset(tmp_path)
    at.session_state[ACTIVE_RUN] = rid
    at.session_state["pred_gradcam"] = False
    at.run()
    at.file_uploader(key="pred_uploads").set_value(
        [("a.jpg", jpeg(2), "image/jpeg"), ("b.jpg", jpeg(3, seed=4), "image/jpeg")]
    ).run()
    assert not at.exception
    said = [w.value for w in at.warning if "Distance check off" in w.value]
    assert len(said) == 2 and all("training images cannot be read" in w for w in said)


def test_uploads_are_kept_across_a_page_change_and_a_reload(data_folder):
    """Issue 19.7: the uploads come back in a new session of the same tab (?s=), until forgotten."""
    from core.store.session_store import new_token

    token = new_token()

    def open_tab() -> AppTest:
        at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
        at.query_params["s"] = token
        at.session_state[ACTIVE_DATASET] = None
        at.session_state["pred_gradcam"] = False
        return at.run()

    at = open_tab()
    at.file_uploader(key="pred_uploads").set_value(
        [
            ("cat.jpg", jpeg(0), "image/jpeg"),
            ("notes.txt", b"no image", "text/plain"),
            ("dog.jpg", jpeg(3), "image/jpeg"),
        ]
    ).run()
    assert len(at.get("plotly_chart")) == 2
    again = open_tab()  # a reload (or a page change): the uploader is empty, the photos are not gone
    assert not again.exception
    assert len(again.get("plotly_chart")) == 2
    assert any("Showing 2 photos uploaded earlier" in c.value for c in again.caption)
    again.button(key="pred_forget").click().run()
    assert len(again.get("plotly_chart")) == 0
    assert len(open_tab().get("plotly_chart")) == 0
