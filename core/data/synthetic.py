"""Generated Pets-shaped datasets for tests, benchmarks and offline demos (no network needed)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# Same naming rule as Oxford-IIIT Pet: cat breeds capitalised, dog breeds lower case.
DEFAULT_CLASSES = ("Bengal", "Persian", "Siamese", "beagle", "boxer", "pug")
SHAPES = ("ellipse", "rectangle", "stripes", "triangle", "cross", "dots")


def draw_example(label_idx: int, rng: np.random.Generator, size: tuple[int, int] = (96, 80)) -> Image.Image:
    """One image whose colour and shape depend on the class, with random position, scale and noise."""
    w, h = size
    hue = (label_idx * 67) % 360
    base = np.array(Image.new("HSV", (1, 1), (int(hue / 360 * 255), 180, 200)).convert("RGB").getpixel((0, 0)))
    bg = rng.integers(30, 90, size=3)
    arr = np.clip(rng.normal(bg, 18, size=(h, w, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    draw = ImageDraw.Draw(img)
    s = int(min(w, h) * rng.uniform(0.35, 0.6))
    x0, y0 = int(rng.integers(0, max(1, w - s))), int(rng.integers(0, max(1, h - s)))
    colour = tuple(int(c) for c in np.clip(base + rng.integers(-20, 20, 3), 0, 255))
    shape = SHAPES[label_idx % len(SHAPES)]
    if shape == "ellipse":
        draw.ellipse((x0, y0, x0 + s, y0 + s), fill=colour)
    elif shape == "rectangle":
        draw.rectangle((x0, y0, x0 + s, y0 + s), fill=colour)
    elif shape == "stripes":
        for k in range(0, s, 6):
            draw.rectangle((x0 + k, y0, x0 + k + 2, y0 + s), fill=colour)
    elif shape == "triangle":
        draw.polygon([(x0, y0 + s), (x0 + s, y0 + s), (x0 + s // 2, y0)], fill=colour)
    elif shape == "cross":
        draw.rectangle((x0 + s // 3, y0, x0 + 2 * s // 3, y0 + s), fill=colour)
        draw.rectangle((x0, y0 + s // 3, x0 + s, y0 + 2 * s // 3), fill=colour)
    else:
        for k in range(0, s, 10):
            for j in range(0, s, 10):
                draw.ellipse((x0 + k, y0 + j, x0 + k + 5, y0 + j + 5), fill=colour)
    return img


def make_pets_like(
    root: Path,
    n_per_class: int = 10,
    classes: tuple[str, ...] = DEFAULT_CLASSES,
    size: tuple[int, int] = (96, 80),
    seed: int = 0,
    vary_size: bool = True,
) -> Path:
    """Write `<breed>_<n>.jpg` files into root (flat, like Pets' images/ folder) and return root."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for idx, label in enumerate(classes):
        for n in range(1, n_per_class + 1):
            w, h = size
            if vary_size:
                w, h = int(w * rng.uniform(0.8, 1.25)), int(h * rng.uniform(0.8, 1.25))
            draw_example(idx, rng, (w, h)).save(root / f"{label}_{n}.jpg", quality=90)
    return root


def make_folder_dataset(root: Path, n_per_class: int = 6, classes: tuple[str, ...] = ("cat", "dog"), seed: int = 0):
    """Write root/<class>/<n>.jpg (labels from the parent folder) and return root."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for idx, label in enumerate(classes):
        (root / label).mkdir(parents=True, exist_ok=True)
        for n in range(n_per_class):
            draw_example(idx, rng).save(root / label / f"{n}.jpg", quality=90)
    return root


def blank_png(width: int, height: int, bit_depth: int = 16, colour_type: int = 0) -> bytes:
    """A real PNG of width × height black pixels, compressed row by row without ever holding them all.

    The hostile upload of issue 18: 12000×12000 16-bit grey (colour_type 0) is 0.3 MB on the wire and 288 MB
    decoded (tests/core/data/test_images.py, bench/abuse.py). colour_type: 0 grey, 2 RGB, 4 grey+alpha, 6 RGBA.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    row = b"\x00" + bytes(width * channels * bit_depth // 8)  # filter byte, then the row's samples
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
