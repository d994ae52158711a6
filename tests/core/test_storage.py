"""Disk caches: stable hashes, atomic writes, clear errors on broken JSON, the data folder choice."""

import json
from dataclasses import dataclass

import pytest

from core.settings import data_dir
from core.storage import atomic_write_json, read_json, stable_hash


@dataclass(frozen=True)
class Config:
    arch: str = "resnet34"
    lr: float = 1e-3


def test_stable_hash_is_stable_and_sensitive():
    assert stable_hash(Config()) == stable_hash(Config()) == stable_hash({"lr": 1e-3, "arch": "resnet34"})
    assert stable_hash(Config(lr=2e-3)) != stable_hash(Config())
    assert len(stable_hash(Config())) == 16 and int(stable_hash(Config()), 16) >= 0


def test_atomic_json_round_trip_and_no_temp_left(tmp_path):
    path = tmp_path / "a" / "run.json"
    atomic_write_json(path, {"x": 1})
    assert read_json(path) == {"x": 1}
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]


def test_broken_json_is_a_value_error(tmp_path):
    path = tmp_path / "run.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read"):
        read_json(path)


def test_data_dir_env_and_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("PETLAB_DATA", str(tmp_path / "env"))
    assert data_dir() == (tmp_path / "env").resolve() and (tmp_path / "env").is_dir()
    monkeypatch.delenv("PETLAB_DATA")
    project = tmp_path / "project"
    (project / ".streamlit").mkdir(parents=True)
    (project / ".streamlit" / "secrets.toml").write_text(
        json.dumps({}).replace("{}", f'data_dir = "{tmp_path / "sec"}"')
    )
    assert data_dir(project) == (tmp_path / "sec").resolve()
