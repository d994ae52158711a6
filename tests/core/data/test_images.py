"""Every kind of bad or unusual user image, generated here: a clear ImageError or a correct RGB image."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from core.data import images
from core.data.images import ImageError, load_image_bytes, load_image_file
from core.data.synthetic import blank_png


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG claiming width x height pixels in a few dozen bytes (the decompression-bomb shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def gradient_rgb(w: int = 60, h: int = 40) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.uint8)
    arr = np.stack([np.tile(x, (h, 1)), np.tile(x[::-1], (h, 1)), np.full((h, w), 90, np.uint8)], axis=-1)
    return Image.fromarray(arr, "RGB")


def test_plain_rgb_jpeg_is_unchanged_in_shape():
    loaded = load_image_bytes(encode(gradient_rgb(), "JPEG"), "ok.jpg")
    assert loaded.image.mode == "RGB" and loaded.image.size == (60, 40)
    assert loaded.notes == []
    assert loaded.digest == images.image_digest(encode(gradient_rgb(), "JPEG"))


def test_not_an_image():
    with pytest.raises(ImageError, match="not an image"):
        load_image_bytes(b"hello, this is a text file\n" * 20, "notes.txt")


def test_empty_file():
    with pytest.raises(ImageError, match="empty"):
        load_image_bytes(b"", "empty.jpg")


def test_damaged_jpeg():
    data = encode(gradient_rgb(200, 150), "JPEG", quality=90)
    with pytest.raises(ImageError, match="damaged"):
        load_image_bytes(data[: len(data) // 2], "cut.jpg")


def test_damaged_png():
    data = bytearray(encode(gradient_rgb(), "PNG"))
    data[60:80] = b"\xff" * 20  # scribble over the compressed pixel data
    with pytest.raises(ImageError, match="damaged|not an image"):
        load_image_bytes(bytes(data), "scribbled.png")


def test_decompression_bomb_is_refused_before_decoding():
    data = png_header_only(13_000, 12_000)  # 156 MP in under 100 bytes
    assert len(data) < 200
    with pytest.raises(ImageError, match="13000×12000 pixels .156 MP.; the limit is 144 MP"):
        load_image_bytes(data, "bomb.png")


def test_bomb_beyond_pil_refusal_is_a_clear_message():
    with pytest.raises(ImageError, match="too large to open safely: more than 144 MP"):
        load_image_bytes(png_header_only(20_000, 20_000), "huge.png")  # 400 MP: PIL refuses at open


def test_between_pil_warning_and_our_limit_is_not_refused_for_size():
    # 100 MP is under MAX_PIXELS (144 MP) but over PIL's 89 MP warning: only the missing pixel data is wrong
    with pytest.raises(ImageError) as err:
        load_image_bytes(png_header_only(10_000, 10_000), "camera100mp.png")
    assert "damaged" in str(err.value) and "large" not in str(err.value)


def test_pixel_limit_is_ours(monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    with pytest.raises(ImageError, match="the limit is"):
        load_image_bytes(encode(gradient_rgb(60, 40), "PNG"), "big.png")  # 2400 pixels > 1000


def test_byte_limit(monkeypatch):
    monkeypatch.setattr(images, "MAX_BYTES", 100)
    with pytest.raises(ImageError, match="MB"):
        load_image_bytes(encode(gradient_rgb(), "PNG"), "heavy.png")


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (30, 20), (0, 255, 255, 0))  # pure red in CMYK
    loaded = load_image_bytes(encode(cmyk, "JPEG", quality=95), "print.jpg")
    assert loaded.image.mode == "RGB"
    r, g, b = loaded.image.getpixel((15, 10))
    assert r > 200 and g < 60 and b < 60
    assert any("CMYK" in n for n in loaded.notes)


def test_16_bit_png_is_rescaled_to_8_bits():
    arr = np.tile(np.linspace(0, 65535, 50).astype(np.uint16), (10, 1))
    loaded = load_image_bytes(encode(Image.fromarray(arr), "PNG"), "scan16.png")
    out = np.asarray(loaded.image)
    assert loaded.image.mode == "RGB" and out.shape == (10, 50, 3)
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255  # full 16-bit range mapped to 0..255
    assert np.all(np.diff(out[0, :, 0].astype(int)) >= 0)
    assert any("8 bits" in n for n in loaded.notes)


def test_rgba_transparent_png_gets_white_background():
    arr = np.zeros((20, 20, 4), np.uint8)
    arr[:, :10] = (0, 0, 255, 255)  # left half opaque blue, right half fully transparent black
    loaded = load_image_bytes(encode(Image.fromarray(arr, "RGBA"), "PNG"), "logo.png")
    assert loaded.image.mode == "RGB"
    assert loaded.image.getpixel((2, 5)) == (0, 0, 255)
    assert loaded.image.getpixel((15, 5)) == (255, 255, 255)
    assert any("transparent" in n for n in loaded.notes)


def test_palette_png_with_transparency():
    img = Image.new("P", (10, 10), 0)
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    img.paste(1, (5, 0, 10, 10))
    loaded = load_image_bytes(encode(img, "PNG", transparency=0), "pal.png")
    assert loaded.image.getpixel((1, 1)) == (255, 255, 255)  # transparent red -> white
    assert loaded.image.getpixel((8, 1)) == (0, 255, 0)


def test_exif_rotated_photo_is_turned_upright():
    img = gradient_rgb(60, 40)  # stored landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    loaded = load_image_bytes(encode(img, "JPEG", exif=exif.tobytes(), quality=95), "phone.jpg")
    assert loaded.image.size == (40, 60)  # shown portrait
    expected = np.asarray(img.transpose(Image.Transpose.ROTATE_270)).astype(int)
    assert np.abs(np.asarray(loaded.image).astype(int) - expected).mean() < 6
    assert any("EXIF" in n for n in loaded.notes)


def test_greyscale_becomes_three_equal_channels():
    grey = Image.fromarray(np.tile(np.arange(0, 250, 5, dtype=np.uint8), (8, 1)), "L")
    loaded = load_image_bytes(encode(grey, "PNG"), "grey.png")
    out = np.asarray(loaded.image)
    assert out.shape == (8, 50, 3)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert np.array_equal(out[..., 0], np.asarray(grey))
    assert any("greyscale" in n for n in loaded.notes)


def test_one_bit_image():
    loaded = load_image_bytes(encode(Image.new("1", (16, 16), 1), "PNG"), "bw.png")
    assert loaded.image.mode == "RGB" and loaded.image.getpixel((0, 0)) == (255, 255, 255)


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    loaded = load_image_bytes(data, "anim.gif")
    r, g, b = loaded.image.getpixel((8, 8))
    assert r > 200 and g < 50 and b < 50
    assert any("first of 3 frames" in n for n in loaded.notes)


def test_large_photo_is_shrunk_for_speed():
    loaded = load_image_bytes(encode(gradient_rgb(3000, 1500), "JPEG"), "big.jpg")
    assert max(loaded.image.size) == images.WORKING_SIDE
    assert loaded.image.size[0] / loaded.image.size[1] == pytest.approx(2.0, rel=0.01)
    assert any("shrunk" in n for n in loaded.notes)


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "WEBP", "TIFF", "GIF"])
def test_other_formats_load(fmt):
    loaded = load_image_bytes(encode(gradient_rgb(), fmt), f"x.{fmt.lower()}")
    assert loaded.image.mode == "RGB" and loaded.image.size == (60, 40)


def test_float_tiff_is_rescaled():
    arr = np.linspace(-1.0, 3.0, 40 * 30, dtype=np.float32).reshape(30, 40)
    loaded = load_image_bytes(encode(Image.fromarray(arr, "F"), "TIFF"), "depth.tif")
    out = np.asarray(loaded.image)
    assert out.min() == 0 and out.max() == 255


def test_load_image_file_missing_and_ok(tmp_path):
    with pytest.raises(ImageError, match="cannot read"):
        load_image_file(tmp_path / "nope.jpg")
    path = tmp_path / "ok.png"
    gradient_rgb().save(path)
    assert load_image_file(path).image.size == (60, 40)


def test_palette_gif_without_transparency_gets_no_transparency_note():
    img = Image.new("P", (10, 10), 1)
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    buf = io.BytesIO()
    img.save(buf, "GIF")
    loaded = load_image_bytes(buf.getvalue(), "p.gif")
    assert loaded.image.getpixel((1, 1)) == (0, 255, 0)
    assert not any("transparent" in n for n in loaded.notes)


def test_opaque_rgba_gets_no_transparency_note():
    buf = io.BytesIO()
    Image.new("RGBA", (10, 10), (1, 2, 3, 255)).save(buf, "PNG")
    assert not any("transparent" in n for n in load_image_bytes(buf.getvalue(), "o.png").notes)


def test_size_limit_reads_as_the_readme_says():
    from core.data.images import MAX_BYTES

    with pytest.raises(ImageError, match="the limit is 50 MB"):
        load_image_bytes(b"x" * (MAX_BYTES + 1), "big.jpg")


# ---- decode memory bounded before decoding (issue 18, item 2) --------------------------------------


PEAK_SCRIPT = """
import resource, sys
from core.data.images import ImageError, load_image_bytes
data = open(sys.argv[1], "rb").read()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    loaded = load_image_bytes(data, "scan.png")
    outcome = f"ok {loaded.image.size[0]}x{loaded.image.size[1]} {loaded.image.mode}"
except ImageError as err:
    outcome = f"refused {err}"
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024, outcome)
"""


def decode_peak(tmp_path, data: bytes) -> tuple[int, str]:
    """Decode data in a fresh process: (MB its peak memory grew by, 'ok …' or 'refused …')."""
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "scan.png"
    path.write_bytes(data)
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(path)], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-800:]
    grown, outcome = done.stdout.strip().split(" ", 1)
    return int(grown), outcome


def test_a_small_png_of_huge_16_bit_pixels_costs_no_gigabytes(tmp_path):
    """The issue's 0.30 MB PNG (12000×12000, 16-bit grey): 3.5 GB and 12 s to decode before (float64 copies of
    the whole image). Now refused from its header; one just under the limit decodes in bounded memory."""
    bomb = blank_png(12_000, 12_000)
    assert len(bomb) < 400_000
    grown, outcome = decode_peak(tmp_path, bomb)
    assert outcome.startswith("refused scan.png is 12000×12000 pixels of I;16: decoding it would take 275 MB")
    assert grown < 50
    grown, outcome = decode_peak(tmp_path, blank_png(11_000, 11_000))  # 231 MB decoded: accepted
    assert outcome == "ok 1024x1024 RGB"
    assert grown < images.MAX_DECODE_BYTES / 1024**2 + 80  # the decoded pixels, no full-size copy beside them


def test_decode_cost_counts_bytes_per_pixel_and_copies():
    def header(mode: str, size=(1000, 1000)) -> Image.Image:
        return Image.open(io.BytesIO(encode(Image.new(mode, (4, 4)), "PNG" if mode != "CMYK" else "JPEG"))).resize(size)

    assert images.decode_bytes(header("L")) == 1_000_000
    assert images.decode_bytes(header("I;16")) == 2_000_000
    assert images.decode_bytes(header("RGB")) == 4_000_000  # PIL keeps RGB in 4 bytes a pixel
    assert images.decode_bytes(header("RGBA")) == 8_000_000  # and premultiplies alpha into a copy to resize
    assert images.decode_bytes(header("P")) == 5_000_000  # converted to RGB before shrinking


def test_big_decodes_wait_for_a_slot_and_say_so_when_the_server_is_busy(monkeypatch):
    """Big decodes share DECODE_SLOTS server-wide: with every slot taken, one waits, then gets a message."""
    import threading

    slots = threading.BoundedSemaphore(1)
    monkeypatch.setattr(images, "_DECODE_SLOTS", slots)
    monkeypatch.setattr(images, "BIG_DECODE_BYTES", 10_000)
    monkeypatch.setattr(images, "DECODE_WAIT_S", 0.2)
    big = encode(gradient_rgb(100, 100), "PNG")  # 40 kB decoded: "big" here
    small = encode(gradient_rgb(40, 40), "PNG")
    slots.acquire()  # another tab is decoding a big image
    try:
        with pytest.raises(ImageError, match="busy decoding other large images"):
            load_image_bytes(big, "big.png")
        assert load_image_bytes(small, "small.png").image.size == (40, 40)  # small ones never wait
    finally:
        slots.release()
    assert load_image_bytes(big, "big.png").image.size == (100, 100)


def test_huge_files_are_refused_before_they_are_read(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_BYTES", 1000)
    path = tmp_path / "big.png"
    noise = np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)
    path.write_bytes(encode(Image.fromarray(noise), "PNG"))
    monkeypatch.setattr(type(path), "read_bytes", lambda self: pytest.fail("read a file over MAX_BYTES"))
    with pytest.raises(ImageError, match="the limit is 0 MB"):
        load_image_file(path)
