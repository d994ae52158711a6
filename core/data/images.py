"""Open any user image safely: one function every page uses for uploads, camera shots and files."""

from __future__ import annotations

import contextlib
import hashlib
import io
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.i18n import _

# Decompression-bomb limit: a 12k x 12k photo is the biggest we accept (144 MP).
MAX_PIXELS = 144_000_000
# Uploads larger than this are refused before decoding.
MAX_BYTES = 50 * 1024 * 1024
# Every accepted image is shrunk so its longer side is at most this (keeps memory and latency low).
WORKING_SIDE = 1024
# Memory one decode may take, computed from the header (pixels × bytes per pixel as PIL stores them, after a
# JPEG's reduced-scale draft) BEFORE any pixel is decoded: a 0.3 MB PNG can hold 12000×12000 16-bit pixels.
# 256 MB: a 64 MP RGB PNG or 144 MP 8-bit grey; a 12000×12000 16-bit PNG (288 MB) is refused.
MAX_DECODE_BYTES = 256 * 1024**2
# Decodes over BIG_DECODE_BYTES take one of DECODE_SLOTS server-wide (two tabs decoding big PNGs at once
# took the server from 1 to 7.4 GB): big decodes wait their turn, so together they stay under
# DECODE_SLOTS × MAX_DECODE_BYTES. Waiting longer than DECODE_WAIT_S refuses the image with a message.
BIG_DECODE_BYTES = 32 * 1024**2
DECODE_SLOTS = 2
DECODE_WAIT_S = 60.0
_DECODE_SLOTS = threading.BoundedSemaphore(DECODE_SLOTS)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class ImageError(ValueError):
    """An input that is not a usable image; the message is meant for the page."""


@dataclass
class LoadedImage:
    """An RGB image ready for a model plus what was done to get it there."""

    image: Image.Image
    digest: str  # sha1 of the original bytes, a cheap cache key
    notes: list[str] = field(default_factory=list)


def public_reason(err: BaseException, path: str | Path | None = None) -> str:
    """An error as a short reason a student may read: no absolute server path in it.

    OSError gives its strerror (the path is a separate attribute); other messages have the file's
    path replaced by its name (PIL quotes the full path in "cannot identify image file").
    """
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    text = str(err) or type(err).__name__
    if path is not None:
        text = text.replace(str(path), Path(path).name)
    return text


def image_digest(data: bytes) -> str:
    """Stable short hash of raw image bytes."""
    return hashlib.sha1(data).hexdigest()[:16]


def decode_bytes(img: Image.Image) -> int:
    """Bytes decoding img takes as PIL stores it (its size and mode now: after a draft), plus the conversion
    and copies made while shrinking (palette to RGB and 1-bit to grey, whose own resizing is nearest-neighbour;
    the premultiplied copy of an image with alpha)."""
    mode = img.mode
    per_pixel = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4  # PIL packs bands in 4 bytes
    # resizing premultiplies alpha into a second full-size copy; palette/1-bit are converted before shrinking
    per_pixel += {"P": 4, "1": 1, "RGBA": 4, "LA": 4, "PA": 4}.get(mode, 0)
    return img.size[0] * img.size[1] * per_pixel


@contextlib.contextmanager
def _decode_slot(cost: int, name: str) -> Iterator[None]:
    """Hold one of the DECODE_SLOTS while decoding an image bigger than BIG_DECODE_BYTES (small ones go at once)."""
    if cost <= BIG_DECODE_BYTES:
        yield
        return
    if not _DECODE_SLOTS.acquire(timeout=DECODE_WAIT_S):
        raise ImageError(
            _("{name} is large and the server is busy decoding other large images: try again in a minute.").format(
                name=name
            )
        )
    try:
        yield
    finally:
        _DECODE_SLOTS.release()


def to_rgb(img: Image.Image, notes: list[str] | None = None) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB: EXIF rotation, CMYK, 16-bit, palette, alpha, grey (call it on a shrunk image)."""
    notes = notes if notes is not None else []
    rotated = ImageOps.exif_transpose(img)
    if rotated is not img and img.getexif().get(0x0112, 1) != 1:
        notes.append(_("rotated upright using the photo's EXIF orientation"))
    img = rotated
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)  # called on the shrunk image: at most WORKING_SIDE² values
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * np.float32(255 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(np.clip(scaled + 0.5, 0, 255).astype(np.uint8), "L")
        notes.append(_("{mode} image rescaled to 8 bits").format(mode=mode))
    if img.mode == "P":  # a palette image has transparency only when it says so
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        alpha = img.convert("RGBA").getchannel("A")
        background.paste(img.convert("RGBA"), mask=alpha)
        img = background
        if alpha.getextrema()[0] < 255:  # only when something was actually transparent
            notes.append(_("transparent areas filled with white"))
    elif img.mode == "CMYK":
        img = img.convert("RGB")
        notes.append(_("CMYK converted to RGB"))
    elif img.mode in ("L", "1"):
        img = img.convert("RGB")
        notes.append(_("greyscale image copied to three channels"))
    elif img.mode != "RGB":
        img = img.convert("RGB")
    return img


def _too_many_bytes(name: str, size: int) -> ImageError:
    return ImageError(
        _("{name} is {size} MB; the limit is {limit} MB.").format(
            name=name, size=f"{size / 1024**2:.0f}", limit=f"{MAX_BYTES / 1024**2:.0f}"
        )
    )


def load_image_bytes(data: bytes, name: str = "upload", max_side: int | None = WORKING_SIDE) -> LoadedImage:
    """Decode untrusted bytes into an RGB image or raise ImageError with a clear message."""
    if not data:
        raise ImageError(_("{name} is empty.").format(name=name))
    if len(data) > MAX_BYTES:
        raise _too_many_bytes(name, len(data))
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            # PIL warns above 89 MP and refuses above 179 MP; our own MAX_PIXELS check below is the limit
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise ImageError(
                    _("{name} is {w}×{h} pixels ({mp} MP); the limit is {limit} MP.").format(
                        name=name, w=w, h=h, mp=f"{w * h / 1e6:.0f}", limit=f"{MAX_PIXELS / 1e6:.0f}"
                    )
                )
            if max_side and max(w, h) > 2 * max_side and img.format == "JPEG":
                img.draft("RGB", (max_side, max_side))  # decode JPEG at reduced scale: fast on huge photos
            cost = decode_bytes(img)
            if cost > MAX_DECODE_BYTES:
                raise ImageError(
                    _(
                        "{name} is {w}×{h} pixels of {mode}: decoding it would take {mb} MB of the server's memory; "
                        "the limit is {limit} MB. Save it smaller, or as a JPEG."
                    ).format(
                        name=name, w=w, h=h, mode=img.mode, mb=f"{cost / 1024**2:.0f}",
                        limit=f"{MAX_DECODE_BYTES / 1024**2:.0f}",
                    )
                )  # fmt: skip
            if getattr(img, "is_animated", False) and getattr(img, "n_frames", 1) > 1:
                img.seek(0)
                notes.append(_("animated image: using the first of {n} frames").format(n=img.n_frames))
            with _decode_slot(cost, name):
                img.load()
                img, shrunk = _shrink(img, max_side)  # before any conversion: those run on at most max_side² pixels
            img = to_rgb(img, notes)
    except ImageError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageError(
            _("{name} is too large to open safely: more than {limit} MP (a decompression bomb?).").format(
                name=name, limit=f"{MAX_PIXELS / 1e6:.0f}"
            )
        ) from err
    except UnidentifiedImageError as err:
        raise ImageError(
            _("{name} is not an image Pet Lab can read (JPEG, PNG, GIF, WebP, BMP, TIFF).").format(name=name)
        ) from err
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(_("{name} looks like an image but is damaged: {error}").format(name=name, error=err)) from err
    if shrunk:
        notes.append(_("shrunk to {w}×{h} for speed").format(w=img.size[0], h=img.size[1]))
    return LoadedImage(image=img, digest=image_digest(data), notes=notes)


def _shrink(img: Image.Image, max_side: int | None) -> tuple[Image.Image, bool]:
    """img with its longer side at most max_side, and whether it was shrunk; no full-size float or RGB copies.

    Palette and 1-bit images are converted first (PIL resizes them nearest-neighbour); decode_bytes counted it.
    """
    if not max_side or max(img.size) <= max_side:
        return img, False
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode == "1":
        img = img.convert("L")
    if img.mode.startswith("I;16"):  # PIL cannot reduce() these: one resize, no intermediate copy
        w, h = img.size
        ratio = max_side / max(w, h)
        return img.resize((max(1, round(w * ratio)), max(1, round(h * ratio))), Image.Resampling.LANCZOS), True
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)  # in place, by an integer reduce first
    return img, True


def square_thumbnail(path: Path, side: int = 160) -> Image.Image:
    """A side×side centre crop of an image file, as Resize(side) with crop shows it; raises ImageError.

    Every grid of photos uses it (the Data page's examples, the Interpretation page's cells and top
    losses), so photos of any shape line up at one size.
    """
    image = load_image_file(Path(path), max_side=side * 4).image
    return ImageOps.fit(image, (side, side), Image.Resampling.LANCZOS)


def load_image_file(path: Path, max_side: int | None = WORKING_SIDE) -> LoadedImage:
    """load_image_bytes for a file on disk (a file over MAX_BYTES is refused before it is read)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:  # refused before reading, with an upload's message
            raise _too_many_bytes(path.name, size)
        data = path.read_bytes()
    except OSError as err:
        raise ImageError(
            _("cannot read {name}: {reason}").format(name=path.name, reason=public_reason(err, path))
        ) from err
    return load_image_bytes(data, path.name, max_side)
