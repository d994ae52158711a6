"""Your own classes: a folder dataset built from uploads, usable by the scanner."""

import io

import pytest
from PIL import Image

from core.datasets import DatasetSpec, scan_dataset
from core.images import ImageError
from core.own_classes import OwnClassesStore


def png_bytes(colour, size=(40, 30), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, "PNG")
    return buf.getvalue()


def test_classes_photos_and_scan(tmp_path):
    store = OwnClassesStore(tmp_path / "own")
    store.add_class("my cat")
    store.add_class("my_dog")
    for shade in (10, 20):
        store.add_photo("my cat", png_bytes((shade, 0, 0)))
        store.add_photo("my_dog", png_bytes((0, shade, 0, 128), mode="RGBA"))
    store.add_photo("my cat", png_bytes((10, 0, 0)))  # the same photo twice is stored once
    assert store.classes() == {"my cat": 2, "my_dog": 2}
    result = scan_dataset(DatasetSpec(name="own", kind="own", root=str(store.root), label_from="parent"))
    assert result.classes == ["my cat", "my_dog"] and result.n_images == 4
    with Image.open(store.photos("my_dog")[0]) as img:
        assert img.mode == "RGB" and img.format == "JPEG"


def test_bad_names_and_files(tmp_path):
    store = OwnClassesStore(tmp_path / "own")
    for bad in ("", "../escape", "a/b", "x" * 41):
        with pytest.raises(ValueError):
            store.add_class(bad)
    store.add_class("ok")
    with pytest.raises(ImageError):
        store.add_photo("ok", b"definitely not an image")
    with pytest.raises(ValueError, match="No class"):
        store.add_photo("missing", png_bytes((1, 2, 3)))
    assert store.classes() == {"ok": 0}


def test_remove_photo_and_class(tmp_path):
    store = OwnClassesStore(tmp_path / "own")
    store.add_class("a")
    photo = store.add_photo("a", png_bytes((5, 5, 5)))
    store.remove_photo("a", "../../outside.jpg")  # ignored: not inside the class
    store.remove_photo("a", photo.name)
    assert store.photos("a") == []
    store.remove_class("a")
    assert store.classes() == {}
