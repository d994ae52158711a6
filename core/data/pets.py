"""The Oxford-IIIT Pet dataset: download it (http/https only) or use a local copy; both unpack with extract_tgz."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.parse
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from core.data.archives import ArchiveError, extract_tgz
from core.data.datasets import DatasetError, DatasetSpec
from core.data.labels import PETS_PATTERN
from core.i18n import _
from core.settings import FolderRefused, archive_dir, datasets_dir, open_allowed
from core.storage import stable_hash

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


def offline_message(url: str, err: Exception) -> str:
    """What a teacher should do when the download cannot happen (no server paths: students read it)."""
    return _(
        "Could not download the dataset from {url} ({reason}). Download {archive} (about 800 MB) on a "
        "machine with internet access, then either put it in the data folder's `archive/` sub-folder and "
        "press Download again, or enter its path (or the path of the extracted `{folder}` folder) under "
        "'Use a local copy'."
    ).format(url=url, reason=getattr(err, "reason", None) or err, archive=ARCHIVE_NAME, folder=FOLDER_NAME)


def check_url(url: str) -> str:
    """The URL if Pet Lab may fetch it (http or https with a host); DatasetError otherwise (no file://, ftp://)."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise DatasetError(_("Only http:// and https:// addresses can be downloaded."))
    return url.strip()


def archive_name(url: str) -> str:
    """The file name the archive is stored under: the URL's last part when it is a tar archive."""
    name = PurePosixPath(urllib.parse.urlsplit(url).path).name
    if name.endswith((".tgz", ".tar.gz", ".tar")) and not name.startswith("."):
        return name
    return f"download-{stable_hash(url, 12)}.tgz"


def matches_fastai_checks(url: str, path: Path) -> bool:
    """fastai's own check of a download (as `untar_data` does): size and MD5 from fastai's
    download_checks.py for a known URL; True for URLs fastai does not list (mirrors)."""
    import fastai.data
    from fastdownload.core import check, checks_module

    return bool(check(checks_module(fastai.data), url, Path(path)))


def download_pets(base: Path, url: str | None = None, progress: Progress | None = None, timeout: float = 30) -> Path:
    """Download (if needed) and extract Pets; returns the images folder.

    The archive is fetched with fastcore's `urlsave` (what fastai's `untar_data` uses) into the
    data folder, then unpacked by `extract_tgz`, the one extractor every archive goes through:
    fastai's own extraction (shutil.unpack_archive) would write members with '../' or absolute
    names anywhere on the server.
    """
    from fastcore.net import urlsave

    base = Path(base)
    url = check_url(url or pets_url())
    found = find_pets(base)
    if found:
        return found
    arch_dir = archive_dir(base)
    arch_dir.mkdir(parents=True, exist_ok=True)
    archive = arch_dir / archive_name(url)
    try:
        if not archive.exists():
            part = archive.with_name(archive.name + ".part")

            def hook(count: int = 1, block: int = 1, total: int | None = None) -> None:
                if progress:
                    progress(count * block, total if total and total > 0 else None)

            try:
                urlsave(url, part, reporthook=hook, timeout=timeout)
            except BaseException:
                part.unlink(missing_ok=True)
                raise
            if not matches_fastai_checks(url, part):
                part.unlink(missing_ok=True)
                raise DatasetError(
                    _(
                        "The downloaded archive does not have the size and checksum fastai expects for it "
                        "(a damaged or different file). It was removed: try again, or use a local copy."
                    )
                )
            part.replace(archive)
        target = extract_tgz(archive, pets_folder(base))
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        raise DatasetError(offline_message(url, err)) from err
    except ArchiveError as err:
        archive.unlink(missing_ok=True)
        raise DatasetError(
            _("The downloaded archive could not be used: {error} It was removed.").format(error=err)
        ) from err
    images = target / "images"
    if not images.is_dir():
        shutil.rmtree(target, ignore_errors=True)
        archive.unlink(missing_ok=True)
        raise DatasetError(
            _("The archive from {url} has no images/ folder; is it the Oxford-IIIT Pet archive?").format(url=url)
        )
    return images


def use_local_pets(source: str | Path, base: Path) -> Path:
    """Accept an already downloaded archive (.tgz) or extracted folder; returns the images folder.

    Only paths inside the folders the server shares (settings.allowed_folders) are opened, and a
    missing, unreadable or forbidden path gets the same answer.
    """
    try:
        path = open_allowed(str(source), want="any", base=base)
    except FolderRefused as err:
        raise DatasetError(str(err)) from err
    if path.is_dir():
        for candidate in (path / "images", path):
            if candidate.is_dir() and any(candidate.glob("*.jpg")):
                return candidate
        raise DatasetError(_("`{source}` holds no images/ folder with .jpg files.").format(source=source))
    if path.name.endswith((".tgz", ".tar.gz", ".tar")):
        try:
            target = extract_tgz(path, pets_folder(base))
        except ArchiveError as err:
            raise DatasetError(str(err)) from err
        images = target / "images"
        if not images.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            raise DatasetError(
                _("{name} has no images/ folder; is it the Oxford-IIIT Pet archive?").format(name=path.name)
            )
        return images
    raise DatasetError(_("{name} is neither a folder nor a .tgz archive.").format(name=path.name))
