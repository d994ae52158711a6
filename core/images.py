"""Open any user image safely: one function every page uses for uploads, camera shots and files."""

from __future__ import annotations

import hashlib
import io
import warnings
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


def to_rgb(img: Image.Image, notes: list[str] | None = None) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB: EXIF rotation, CMYK, 16-bit, palette, alpha, grey."""
    notes = notes if notes is not None else []
    if getattr(img, "is_animated", False) and getattr(img, "n_frames", 1) > 1:
        img.seek(0)
        notes.append(_("animated image: using the first of {n} frames").format(n=img.n_frames))
    rotated = ImageOps.exif_transpose(img)
    if rotated is not img and img.getexif().get(0x0112, 1) != 1:
        notes.append(_("rotated upright using the photo's EXIF orientation"))
    img = rotated
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(scaled.astype(np.uint8), "L")
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


def load_image_bytes(data: bytes, name: str = "upload", max_side: int | None = WORKING_SIDE) -> LoadedImage:
    """Decode untrusted bytes into an RGB image or raise ImageError with a clear message."""
    if not data:
        raise ImageError(_("{name} is empty.").format(name=name))
    if len(data) > MAX_BYTES:
        raise ImageError(
            _("{name} is {size} MB; the limit is {limit} MB.").format(
                name=name, size=f"{len(data) / 1024**2:.0f}", limit=f"{MAX_BYTES / 1024**2:.0f}"
            )
        )
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
            img.load()
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
    if max_side and max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        notes.append(_("shrunk to {w}×{h} for speed").format(w=img.size[0], h=img.size[1]))
    return LoadedImage(image=img, digest=image_digest(data), notes=notes)


def square_thumbnail(path: Path, side: int = 160) -> Image.Image:
    """A side×side centre crop of an image file, as Resize(side) with crop shows it; raises ImageError.

    Every grid of photos uses it (the Data page's examples, the Interpretation page's cells and top
    losses), so photos of any shape line up at one size.
    """
    image = load_image_file(Path(path), max_side=side * 4).image
    return ImageOps.fit(image, (side, side), Image.Resampling.LANCZOS)


def load_image_file(path: Path, max_side: int | None = WORKING_SIDE) -> LoadedImage:
    """load_image_bytes for a file on disk."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ImageError(
            _("cannot read {name}: {reason}").format(name=path.name, reason=public_reason(err, path))
        ) from err
    return load_image_bytes(data, path.name, max_side)
