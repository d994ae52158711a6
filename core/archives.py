"""Safe extraction of user-supplied .zip files and of the Pets .tgz."""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from PIL import Image

from core.images import IMAGE_SUFFIXES, MAX_PIXELS

MAX_FILES = 20_000
MAX_TOTAL_BYTES = 2 * 1024**3  # 2 GiB uncompressed
MAX_IMAGE_PIXELS = MAX_PIXELS


class ArchiveError(ValueError):
    """An archive that cannot be used; the message is meant for the page."""


@dataclass
class ExtractReport:
    """What an extraction produced and what it left out, with reasons."""

    target: Path
    extracted: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name in archive, reason)


def _safe_member_path(name: str) -> PurePosixPath | None:
    """The member's relative path, or None when it would escape the target (absolute, '..', drive)."""
    name = name.replace("\\", "/")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        return None
    return path


def extract_zip(
    source,
    target: Path,
    max_files: int = MAX_FILES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> ExtractReport:
    """Extract the images of a zip (path or file object) into target; nothing can land outside it.

    Non-images, links, hidden files and images over max_pixels are skipped and listed. The member
    count and the uncompressed size are limited, counting real bytes (not the sizes the zip claims).
    """
    target = Path(target).resolve()
    report = ExtractReport(target=target)
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as err:
        raise ArchiveError(f"Not a readable .zip file: {err}") from err
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > max_files:
            raise ArchiveError(f"The zip holds {len(members)} files; the limit is {max_files}.")
        target.mkdir(parents=True, exist_ok=True)
        total = 0
        for info in members:
            rel = _safe_member_path(info.filename)
            if rel is None:
                report.skipped.append((info.filename, "path escapes the folder; refused"))
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                report.skipped.append((info.filename, "symbolic link; refused"))
                continue
            if any(part.startswith(".") or part == "__MACOSX" for part in rel.parts):
                report.skipped.append((info.filename, "hidden or system file"))
                continue
            if rel.suffix.lower() not in IMAGE_SUFFIXES:
                report.skipped.append((info.filename, "not an image"))
                continue
            dest = target.joinpath(*rel.parts)
            if not dest.resolve().is_relative_to(target):
                report.skipped.append((info.filename, "path escapes the folder; refused"))
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as src, open(dest, "wb") as out:
                    while chunk := src.read(1 << 20):
                        total += len(chunk)
                        if total > max_total_bytes:
                            raise ArchiveError(
                                f"The zip unpacks to more than {max_total_bytes / 1024**3:.1f} GiB; refused."
                            )
                        out.write(chunk)
            except ArchiveError:
                dest.unlink(missing_ok=True)
                raise
            except (zipfile.BadZipFile, OSError, EOFError) as err:
                dest.unlink(missing_ok=True)
                report.skipped.append((info.filename, f"damaged in the zip: {err}"))
                continue
            reason = _image_problem(dest, max_pixels)
            if reason:
                dest.unlink(missing_ok=True)
                report.skipped.append((info.filename, reason))
                continue
            report.extracted.append(rel.as_posix())
    return report


def _image_problem(path: Path, max_pixels: int) -> str | None:
    """Why an extracted file is not a usable image (header only), or None."""
    try:
        with Image.open(path) as img:
            width, height = img.size
    except Exception as err:
        return f"not a readable image: {err}"
    if width * height > max_pixels:
        return f"{width}×{height} pixels is over the {max_pixels / 1e6:.0f} MP limit"
    return None


def extract_tgz(archive: Path, target: Path) -> Path:
    """Extract a .tgz with tarfile's 'data' filter (no absolute paths, links out or devices)."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(tmp, filter="data")
    except (tarfile.TarError, OSError, EOFError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ArchiveError(f"Cannot extract {Path(archive).name}: {err}") from err
    # archives hold one top folder (oxford-iiit-pet/...); move its content into place atomically
    entries = list(tmp.iterdir())
    inner = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
    if target.exists():
        shutil.rmtree(target)
    inner.rename(target)
    shutil.rmtree(tmp, ignore_errors=True)
    return target
