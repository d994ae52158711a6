"""The Oxford-IIIT Pet dataset: download with fastai's untar_data, or use a local copy."""

from __future__ import annotations

import shutil
import urllib.error
from collections.abc import Callable
from pathlib import Path

from core.archives import ArchiveError, extract_tgz
from core.datasets import DatasetError, DatasetSpec
from core.labels import PETS_PATTERN

PETS_NAME = "Oxford-IIIT Pet"
ARCHIVE_NAME = "oxford-iiit-pet.tgz"
FOLDER_NAME = "oxford-iiit-pet"
# 37 breeds, 12 cats and 25 dogs; cat breeds are the capitalised names.
N_CLASSES = 37

Progress = Callable[[int, int | None], None]  # (bytes so far, total bytes or None)


def pets_url() -> str:
    """fastai's URLs.PETS (the lesson's dataset address)."""
    from fastai.data.external import URLs

    return URLs.PETS


def archive_dir(base: Path) -> Path:
    return Path(base) / "archive"


def datasets_dir(base: Path) -> Path:
    return Path(base) / "datasets"


def pets_folder(base: Path) -> Path:
    """Where the extracted dataset lives: <data>/datasets/oxford-iiit-pet (images/, annotations/)."""
    return datasets_dir(base) / FOLDER_NAME


def find_pets(base: Path) -> Path | None:
    """The images folder of an already extracted Pets dataset under the data folder, if any."""
    images = pets_folder(base) / "images"
    return images if images.is_dir() and any(images.glob("*.jpg")) else None


def pets_spec(images: Path) -> DatasetSpec:
    """The lesson's labelling: the breed is the file name before _<number>.jpg."""
    return DatasetSpec(name=PETS_NAME, kind="pets", root=str(images), label_from="regex", pattern=PETS_PATTERN)


def offline_message(base: Path, url: str, err: Exception) -> str:
    """What a teacher should do when the download cannot happen."""
    return (
        f"Could not download the dataset from {url} ({err}). "
        f"Download {ARCHIVE_NAME} (about 800 MB) on a machine with internet access, then either put it at "
        f"{archive_dir(base) / ARCHIVE_NAME} and press Download again, or enter its path (or the path of the "
        f"extracted `{FOLDER_NAME}` folder) under 'Use a local copy'."
    )


def download_pets(base: Path, url: str | None = None, progress: Progress | None = None, timeout: float = 30) -> Path:
    """Download (if needed) and extract Pets with fastai's untar_data; returns the images folder.

    The archive is fetched first with a progress hook into the path fastdownload uses, then
    `untar_data` checks and extracts it exactly as in the lesson.
    """
    from fastai.data.external import untar_data
    from fastcore.net import urldest, urlsave

    base = Path(base)
    url = url or pets_url()
    arch_dir = archive_dir(base)
    arch_dir.mkdir(parents=True, exist_ok=True)
    archive = urldest(url, arch_dir)
    found = find_pets(base)
    if found:
        return found
    try:
        if not archive.exists():
            part = archive.with_name(archive.name + ".part")

            def hook(count: int = 1, block: int = 1, total: int | None = None) -> None:
                if progress:
                    progress(count * block, total if total and total > 0 else None)

            urlsave(url, part, reporthook=hook, timeout=timeout)
            part.replace(archive)
        path = untar_data(url, archive=arch_dir, data=datasets_dir(base), base=str(base / "fastai"))
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        raise DatasetError(offline_message(base, url, err)) from err
    except Exception as err:  # fastdownload raises a bare Exception on a bad archive
        archive.unlink(missing_ok=True)
        raise DatasetError(f"The downloaded archive could not be used ({err}); it was removed, try again.") from err
    images = Path(path) / "images"
    if not images.is_dir():
        raise DatasetError(f"The archive from {url} has no images/ folder; is it the Oxford-IIIT Pet archive?")
    return images


def use_local_pets(source: Path, base: Path) -> Path:
    """Accept an already downloaded archive (.tgz) or extracted folder; returns the images folder."""
    source = Path(source).expanduser()
    if not source.exists():
        raise DatasetError(f"Nothing at {source}.")
    if source.is_dir():
        for candidate in (source / "images", source):
            if candidate.is_dir() and any(candidate.glob("*.jpg")):
                return candidate
        raise DatasetError(f"{source} holds no images/ folder with .jpg files.")
    if source.name.endswith((".tgz", ".tar.gz", ".tar")):
        try:
            target = extract_tgz(source, pets_folder(base))
        except ArchiveError as err:
            raise DatasetError(str(err)) from err
        images = target / "images"
        if not images.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            raise DatasetError(f"{source.name} has no images/ folder; is it the Oxford-IIIT Pet archive?")
        return images
    raise DatasetError(f"{source.name} is neither a folder nor a .tgz archive.")
