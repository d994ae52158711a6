"""Where Pet Lab keeps downloads and caches, and how that is chosen."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

ENV_VAR = "PETLAB_DATA"
DEFAULT_DATA_DIR = Path("~/.petlab")


def data_dir(project_root: Path | None = None) -> Path:
    """Return (and create) the one data folder: $PETLAB_DATA, else secrets.toml `data_dir`, else ~/.petlab."""
    chosen = os.environ.get(ENV_VAR)
    if not chosen:
        root = project_root or Path(__file__).resolve().parent.parent
        secrets = root / ".streamlit" / "secrets.toml"
        if secrets.is_file():
            try:
                chosen = tomllib.loads(secrets.read_text()).get("data_dir")
            except (tomllib.TOMLDecodeError, OSError):
                chosen = None
    path = Path(chosen or DEFAULT_DATA_DIR).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def sub_dir(name: str, base: Path | None = None) -> Path:
    """A named sub-folder of the data folder (datasets, runs, features, ...), created if missing."""
    path = (base or data_dir()) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def torch_home(base: Path | None = None) -> Path:
    """TORCH_HOME used for pretrained weights, inside the data folder unless already set."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]).expanduser()
    return sub_dir("torch", base)
