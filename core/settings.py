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


# ---- which server folders a browser may open ---------------------------------------------------

FOLDERS_ENV_VAR = "PETLAB_FOLDERS"


class FolderRefused(ValueError):
    """A path a browser asked for that it may not open; the message is the same whatever the reason."""


def allowed_folders(base: Path | None = None) -> list[Path]:
    """Folders the local-folder source may open: $PETLAB_FOLDERS (os.pathsep-separated) if set, else
    the data folder and $PETLAB_DATASET. Only whoever starts the server sets these."""
    listed = os.environ.get(FOLDERS_ENV_VAR)
    if listed:
        chosen = [Path(p).expanduser() for p in listed.split(os.pathsep) if p.strip()]
    else:
        chosen = [base or data_dir()]
        if os.environ.get("PETLAB_DATASET"):
            chosen.append(Path(os.environ["PETLAB_DATASET"]).expanduser())
    return [p.resolve() for p in chosen]


def open_allowed(typed: str, want: str = "dir", base: Path | None = None) -> Path:
    """The resolved path a browser typed, if it may open it; FolderRefused otherwise.

    Missing, unreadable and forbidden paths all get one message (no path oracle: a student cannot
    learn what exists on the server). want: "dir", "file" or "any".
    """
    refused = FolderRefused(
        f"Cannot open `{typed}`: it does not exist, cannot be read, or is outside the folders this "
        f"server shares (the data folder, or those the teacher lists in ${FOLDERS_ENV_VAR})."
    )
    try:
        path = Path(typed).expanduser().resolve()
    except (OSError, RuntimeError, ValueError) as err:
        raise refused from err
    if not any(path == root or path.is_relative_to(root) for root in allowed_folders(base)):
        raise refused
    if not os.access(path, os.R_OK) or not (path.is_dir() or path.is_file()):
        raise refused
    if want == "dir" and not path.is_dir():
        raise FolderRefused(f"`{typed}` is a file, not a folder: enter the folder that holds the images.")
    if want == "file" and not path.is_file():
        raise FolderRefused(f"`{typed}` is a folder, not a file.")
    return path
