"""The data folder: where Pet Lab keeps downloads and caches, how that is chosen, and its layout.

Every path directly under the data folder is named here (docs/data-folder.md); what lies
inside one of its sub-folders belongs to the module that owns it (a run folder to core.store.runs,
`jobs/` to core.teach.jobs, a student's space to core.teach.classroom, an own-classes folder to
core.teach.own_classes).
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from pathlib import Path

from core.i18n import _

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
    _make(path)
    return path


def _make(path: Path) -> None:
    """Create a folder of the layout when missing; best effort: on a full disk the page goes on, and what
    writes there later says why it cannot."""
    with contextlib.suppress(OSError):
        path.mkdir(parents=True, exist_ok=True)


def sub_dir(name: str, base: Path | None = None) -> Path:
    """A named sub-folder of the data folder (datasets, runs, features, ...), created if missing."""
    path = (base or data_dir()) / name
    _make(path)
    return path


def torch_home(base: Path | None = None) -> Path:
    """TORCH_HOME used for pretrained weights, inside the data folder unless already set."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]).expanduser()
    return sub_dir(TORCH_DIR, base)


def checkpoints_dir(base: Path | None = None) -> Path:
    """Where torchvision keeps (and looks for) pretrained checkpoints: TORCH_HOME/hub/checkpoints."""
    return torch_home(base) / TORCH_CHECKPOINTS_DIR


# ---- the layout: every name directly under the data folder ------------------------------------

ARCHIVE_DIR = "archive"  # downloaded archives (oxford-iiit-pet.tgz)
DATASETS_DIR = "datasets"  # extracted datasets
UPLOADS_DIR = f"{DATASETS_DIR}/uploads"  # images extracted from uploaded .zip files
OWN_DIR = f"{DATASETS_DIR}/own"  # "your own classes" (the teacher's, in class mode)
PUBLISHED_DIR = f"{DATASETS_DIR}/published"  # students' classes the teacher published
RUNS_DIR = "runs"  # one folder per trained run (core.store.runs)
FEATURES_DIR = "features"  # cached body features (core.train.features)
PATCH_INDEX_DIR = "patch_index"  # top-activating patch indexes (core.inside.patches)
NOVELTY_DIR = "novelty"  # per-run "unlike the training images" references (core.predict.novelty)
SESSIONS_DIR = "sessions"  # one settings store per browser tab (core.store.session_store)
TORCH_DIR = "torch"  # TORCH_HOME unless $TORCH_HOME is set
TORCH_CHECKPOINTS_DIR = "hub/checkpoints"  # under TORCH_HOME
JOBS_DIR = "jobs"  # the training queue (core.teach.jobs)
STUDENTS_DIR = "students"  # class mode: one private space per student tab (core.teach.classroom)
HEARTBEATS_DIR = "heartbeats"  # class mode: one file per open tab
CLASS_FILE = "class.json"  # class mode: the class dataset and model
LESSON_FILE = "lesson.json"  # class mode: the Lesson step the teacher shows the class (core.teach.classroom)
LIVE_DIR = "live"  # class mode: change stamps every open tab polls (core.store.live)
SECRET_FILE = ".secret"  # keys the teacher's sign-ins (core.auth)
AUTH_DIR = "auth"  # class mode: the teacher's sign-ins, the password-guessing guard and its log (core.auth)


def archive_dir(base: Path) -> Path:
    return Path(base) / ARCHIVE_DIR


def datasets_dir(base: Path) -> Path:
    return Path(base) / DATASETS_DIR


def uploads_dir(base: Path) -> Path:
    return Path(base) / UPLOADS_DIR


def own_classes_dir(base: Path) -> Path:
    return Path(base) / OWN_DIR


def published_dir(base: Path) -> Path:
    return Path(base) / PUBLISHED_DIR


def runs_dir(base: Path) -> Path:
    return Path(base) / RUNS_DIR


def features_dir(base: Path) -> Path:
    return Path(base) / FEATURES_DIR


def patch_index_dir(base: Path) -> Path:
    return Path(base) / PATCH_INDEX_DIR


def sessions_dir(base: Path) -> Path:
    return Path(base) / SESSIONS_DIR


def jobs_dir(base: Path) -> Path:
    return Path(base) / JOBS_DIR


def students_dir(base: Path) -> Path:
    return Path(base) / STUDENTS_DIR


def heartbeats_dir(base: Path) -> Path:
    return Path(base) / HEARTBEATS_DIR


def class_file(base: Path) -> Path:
    return Path(base) / CLASS_FILE


def lesson_file(base: Path) -> Path:
    return Path(base) / LESSON_FILE


def live_dir(base: Path) -> Path:
    return Path(base) / LIVE_DIR


def secret_file(base: Path) -> Path:
    return Path(base) / SECRET_FILE


def auth_dir(base: Path) -> Path:
    return Path(base) / AUTH_DIR


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
        _(
            "Cannot open `{typed}`: it does not exist, cannot be read, or is outside the folders this server "
            "shares (the data folder, or those the teacher lists in ${env})."
        ).format(typed=typed, env=FOLDERS_ENV_VAR)
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
        raise FolderRefused(
            _("`{typed}` is a file, not a folder: enter the folder that holds the images.").format(typed=typed)
        )
    if want == "file" and not path.is_file():
        raise FolderRefused(_("`{typed}` is a folder, not a file.").format(typed=typed))
    return path
