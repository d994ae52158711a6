"""Safe extraction of user-supplied .zip files and of the Pets .tgz."""

from __future__ import annotations

import shutil
import stat
import tarfile
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from zlib import error as zlib_error

from PIL import Image

from core.data.images import IMAGE_SUFFIXES, MAX_PIXELS, public_reason
from core.i18n import _

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


UTF8_FLAG = 0x800  # general purpose bit 11: the member's name is UTF-8


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" or "\u3400" <= c <= "\u4dbf" for c in text)


def member_names(infos: list[zipfile.ZipInfo]) -> dict[str, str]:
    """Each member's name as its author wrote it (NFC): zipfile's name -> the name to extract to.

    Class folders in a zip carry class names, and zip tools disagree on their encoding: names flagged
    UTF-8 are read as such; unflagged ones zipfile reads as cp437 (the zip standard's default), which
    turns a Mac's UTF-8 "猫" or a Chinese Windows' GBK "猫" into mojibake. For the unflagged names of one
    archive: UTF-8 if all of them are valid UTF-8, else GB18030 (GBK's superset) if all decode and some
    hold Chinese characters, else cp437 as written. NFC: a Mac writes NFD.
    """
    raw = {i.filename: i.filename.encode("cp437") for i in infos if not i.flag_bits & UTF8_FLAG}
    decoded: dict[str, str] = {}
    for encoding in ("utf-8", "gb18030"):
        try:
            decoded = {name: data.decode(encoding) for name, data in raw.items()}
        except (UnicodeDecodeError, UnicodeEncodeError):
            decoded = {}
            continue
        if encoding == "utf-8" or any(_has_cjk(n) for n in decoded.values()):
            break
        decoded = {}
    return {i.filename: unicodedata.normalize("NFC", decoded.get(i.filename, i.filename)) for i in infos}


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
    created = not target.exists()
    try:
        report = _extract_zip(source, target, max_files, max_total_bytes, max_pixels)
    except BaseException:
        if created:  # a refused zip leaves nothing behind
            shutil.rmtree(target, ignore_errors=True)
        raise
    if created and not report.extracted:
        shutil.rmtree(target, ignore_errors=True)
    return report


def _extract_zip(source, target: Path, max_files: int, max_total_bytes: int, max_pixels: int) -> ExtractReport:
    report = ExtractReport(target=target)
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ArchiveError(_("Not a readable .zip file ({why}).").format(why=why)) from err
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > max_files:
            raise ArchiveError(
                _("The zip holds {n} files; the limit is {limit}.").format(n=len(members), limit=max_files)
            )
        target.mkdir(parents=True, exist_ok=True)
        total = 0
        names = member_names(members)
        for info in members:
            name = names[info.filename]
            rel = _safe_member_path(name)
            if rel is None:
                report.skipped.append((name, _("path escapes the folder; refused")))
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                report.skipped.append((name, _("symbolic link; refused")))
                continue
            if any(part.startswith(".") or part == "__MACOSX" for part in rel.parts):
                report.skipped.append((name, _("hidden or system file")))
                continue
            if rel.suffix.lower() not in IMAGE_SUFFIXES:
                report.skipped.append((name, _("not an image")))
                continue
            dest = target.joinpath(*rel.parts)
            if not dest.resolve().is_relative_to(target):
                report.skipped.append((name, _("path escapes the folder; refused")))
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as src, open(dest, "wb") as out:
                    while chunk := src.read(1 << 20):
                        total += len(chunk)
                        if total > max_total_bytes:
                            raise ArchiveError(
                                _("The zip unpacks to more than {gib} GiB; refused.").format(
                                    gib=f"{max_total_bytes / 1024**3:.1f}"
                                )
                            )
                        out.write(chunk)
            except ArchiveError:
                dest.unlink(missing_ok=True)
                raise
            except (zipfile.BadZipFile, OSError, EOFError) as err:
                dest.unlink(missing_ok=True)
                why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
                report.skipped.append((name, _("damaged in the zip: {why}").format(why=why)))
                continue
            reason = _image_problem(dest, max_pixels)
            if reason:
                dest.unlink(missing_ok=True)
                report.skipped.append((name, reason))
                continue
            report.extracted.append(rel.as_posix())
    return report


def _image_problem(path: Path, max_pixels: int) -> str | None:
    """Why an extracted file is not a usable image (header only), or None."""
    try:
        with Image.open(path) as img:
            width, height = img.size
    except Exception as err:
        return _("not a readable image: {reason}").format(reason=public_reason(err, path))
    if width * height > max_pixels:
        return _("{w}×{h} pixels is over the {limit} MP limit").format(
            w=width, h=height, limit=f"{max_pixels / 1e6:.0f}"
        )
    return None


MAX_TGZ_FILES = 100_000
MAX_TGZ_BYTES = 4 * 1024**3  # 4 GiB uncompressed (Pets is about 800 MB)


def _tar_filter(archive_name: str, max_files: int, max_total_bytes: int):
    """tarfile's 'data' filter, stricter: absolute names, links and special files refuse the archive.

    The 'data' filter already refuses members that would land outside the target, links that point
    out of it and device files, but it silently strips a leading '/' and keeps links inside; a
    teaching dataset needs neither, so any of them refuses the whole archive. Sizes are counted
    from the headers, which tarfile then writes exactly (a short member is an error).
    """
    seen = {"files": 0, "bytes": 0}

    def refuse(member: tarfile.TarInfo, why: str) -> ArchiveError:
        return ArchiveError(
            _("{archive} was refused: its member {member} {why}.").format(
                archive=archive_name, member=repr(member.name), why=why
            )
        )

    def check(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        name = member.name.replace("\\", "/")
        if name.startswith("/") or (name[:2].endswith(":")):
            raise refuse(member, _("has an absolute path"))
        if ".." in PurePosixPath(name).parts:
            raise refuse(member, _("points outside the archive's folder"))
        if member.issym() or member.islnk():
            raise refuse(member, _("is a link"))
        if not (member.isfile() or member.isdir()):
            raise refuse(member, _("is a device, pipe or other special file"))
        seen["files"] += 1
        seen["bytes"] += member.size
        if seen["files"] > max_files:
            raise ArchiveError(
                _("{archive} was refused: it holds more than {n} members.").format(
                    archive=archive_name, n=f"{max_files:,}"
                )
            )
        if seen["bytes"] > max_total_bytes:
            raise ArchiveError(
                _("{archive} was refused: it unpacks to more than {gib} GiB.").format(
                    archive=archive_name, gib=f"{max_total_bytes / 1024**3:.0f}"
                )
            )
        try:
            return tarfile.data_filter(member, dest)
        except tarfile.FilterError as err:  # its message names the server's folder: keep ours
            raise refuse(member, _("would be written outside the archive's folder")) from err

    return check


def extract_tgz(
    archive: Path, target: Path, max_files: int = MAX_TGZ_FILES, max_total_bytes: int = MAX_TGZ_BYTES
) -> Path:
    """Extract a .tgz (downloaded, local copy, anything) into target: the one path every tar archive takes.

    Members are checked by tarfile's 'data' filter plus ours (no absolute paths, links, devices,
    '..'); the first bad member refuses the archive and nothing is left behind. Messages name the
    archive, never the server's folders.
    """
    target = Path(target)
    name = Path(archive).name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(tmp, filter=_tar_filter(name, max_files, max_total_bytes))
    except ArchiveError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except (tarfile.TarError, OSError, EOFError, zlib_error) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        why = err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
        raise ArchiveError(
            _("Cannot extract {name}: it is damaged or not a .tgz archive ({why}).").format(name=name, why=why)
        ) from err
    # archives hold one top folder (oxford-iiit-pet/...); move its content into place atomically
    entries = list(tmp.iterdir()) if tmp.is_dir() else []
    if not entries:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ArchiveError(_("{name} is empty.").format(name=name))
    inner = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
    if target.exists():
        shutil.rmtree(target)
    inner.rename(target)
    shutil.rmtree(tmp, ignore_errors=True)
    return target
