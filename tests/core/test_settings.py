"""Settings for a class server: the folder allow-list and the Streamlit client options."""

import tomllib
from pathlib import Path

import pytest

from core import settings

ROOT = Path(__file__).resolve().parents[2]


def test_streamlit_config_hides_tracebacks_and_developer_menu():
    from streamlit.config import ShowErrorDetailsConfigOptions

    client = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["client"]
    assert client["showErrorDetails"] in {"type", "none"}
    assert client["showErrorDetails"] in {o.value for o in ShowErrorDetailsConfigOptions}  # a value 1.67 accepts
    assert client["toolbarMode"] in {"viewer", "minimal"}  # no Deploy button, no developer menu


def test_streamlit_config_skips_the_full_gc_after_each_rerun():
    from streamlit import config

    runner = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["runner"]
    assert runner["postScriptGC"] is False  # a full collection per rerun cost most of a prediction's CPU
    assert "runner.postScriptGC" in config._config_options_template  # an option 1.67 knows


def test_streamlit_config_for_kept_widgets_and_stop():
    """keep() restores widget values (no duplication warning box); Stop's rerun waits for the stopped run."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["global"]["disableWidgetStateDuplicationWarning"] is True
    assert config["runner"]["fastReruns"] is False


def test_allowed_folders_default_and_env(tmp_path, data_folder, monkeypatch):
    assert settings.allowed_folders() == [data_folder.resolve()]
    monkeypatch.setenv("PETLAB_DATASET", str(tmp_path / "ds"))
    assert settings.allowed_folders() == [data_folder.resolve(), (tmp_path / "ds").resolve()]
    monkeypatch.setenv("PETLAB_FOLDERS", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    assert settings.allowed_folders() == [(tmp_path / "a").resolve(), (tmp_path / "b").resolve()]


def test_open_allowed_one_answer_outside_and_links_out(tmp_path, data_folder):
    inside = data_folder / "datasets" / "mine"
    inside.mkdir(parents=True)
    assert settings.open_allowed(str(inside)) == inside.resolve()
    (data_folder / "escape").symlink_to("/etc")  # a link in the data folder does not widen it
    answers = set()
    for typed in ("/etc", str(data_folder / "escape"), str(data_folder / "missing"), str(tmp_path), "~root"):
        with pytest.raises(settings.FolderRefused) as info:
            settings.open_allowed(typed)
        answers.add(str(info.value).replace(f"`{typed}`", "<typed>"))
    assert len(answers) == 1
