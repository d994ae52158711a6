"""Your own classes: a folder dataset built from uploads, usable by the scanner."""

import io

import pytest
from PIL import Image

from core.data.datasets import DatasetSpec, scan_dataset
from core.data.images import ImageError
from core.teach.own_classes import MAX_NAME_BYTES, OwnClassesStore, class_name, name_key, safe_folder_name


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
    for bad in ("", "   ", "../escape", "a/b", "a\\b", "x" * 41, ".hidden", "..", "-dash", "a.b", "tab\x00x"):
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


@pytest.mark.parametrize(
    "name", ["猫", "chat noir", "Кошка", "قطة", "बिल्ली", "ねこ_2", "고양이-1", "Ἀθηνᾶ", "میخواهم\u200cها"]
)
def test_names_in_any_script_are_classes(tmp_path, name):
    """Issue 19 item 5: "猫" was refused (the rule was ASCII only) in a UI translated into Chinese."""
    store = OwnClassesStore(tmp_path / "own")
    assert store.add_class(name) == name
    store.add_photo(name, png_bytes((1, 2, 3)))
    assert store.classes() == {name: 1}
    assert (store.root / name).is_dir()  # the folder is named as the class: readable on disk and by parent_label
    result = scan_dataset(DatasetSpec(name="own", kind="own", root=str(store.root), label_from="parent"))
    assert result.classes == [name]


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("a/猫", "'/'"),
        ("猫\u202e", "U\\+202E"),  # right-to-left override: shows one name, stores another
        ("猫\u200b", "U\\+200B"),  # zero-width space: invisible
        ("猫\n", None),  # a newline is only whitespace at the end: stripped
        ("🐱", "'🐱'"),
        ("CON", "reserved"),
        ("lpt1.txt", "'.'"),
        ("nul", "reserved"),
        ("\u0301e", "starts with a letter"),  # a combining mark cannot start a name
    ],
)
def test_names_that_cannot_be_folder_names_are_refused(bad, why):
    if why is None:
        assert class_name(bad) == "猫"
        return
    with pytest.raises(ValueError, match=why):
        class_name(bad)


def test_names_are_nfc_single_spaced_and_bounded_in_bytes(tmp_path):
    assert class_name("  chat \t  noir ") == "chat noir"
    assert class_name("cafe\u0301") == "café" == class_name("caf\u00e9")  # NFD (a Mac) and NFC: one name
    assert class_name("猫" * 40) == "猫" * 40  # 40 characters, 120 bytes: the limits
    with pytest.raises(ValueError, match="too long"):
        class_name("𠀀" * 31)  # 31 characters but 124 bytes: over the byte limit
    assert len("𠀀".encode()) * 30 <= MAX_NAME_BYTES


def test_names_that_are_the_same_class_share_one_folder(tmp_path):
    """NFC vs NFD and upper vs lower case would be one folder on a Mac or Windows disk: they are one class here."""
    store = OwnClassesStore(tmp_path / "own")
    assert store.add_class("Café") == "Café"
    assert store.add_class("cafe\u0301") == "Café"
    assert store.add_class("CAFÉ") == "Café"
    assert name_key("Café") == name_key("cafe\u0301") == name_key("CAFÉ")
    store.add_photo("cafe\u0301", png_bytes((9, 9, 9)))  # any spelling reaches the class
    assert store.classes() == {"Café": 1} and len(list(store.root.iterdir())) == 1
    store.remove_class("CAFÉ")
    assert store.classes() == {}


def test_a_folder_written_on_a_mac_is_read_as_nfc(tmp_path):
    store = OwnClassesStore(tmp_path / "own")
    (store.root / "Cafe\u0301").mkdir(parents=True)  # NFD, as macOS spells it
    store.add_photo("Café", png_bytes((3, 3, 3)))
    assert store.classes() == {"Café": 1}
    result = scan_dataset(DatasetSpec(name="own", kind="own", root=str(store.root), label_from="parent"))
    assert result.classes == ["Café"]


def test_published_folder_names_keep_any_script_and_stay_safe():
    assert safe_folder_name("猫和狗", "fallback") == "猫和狗"
    assert safe_folder_name("../../etc", "fallback") == "etc"
    assert safe_folder_name("class 7b!", "fallback") == "class_7b"
    assert safe_folder_name("...", "fallback") == "fallback"
    assert safe_folder_name("CON", "fallback") == "fallback"
    assert len(safe_folder_name("猫" * 100, "fallback").encode()) <= MAX_NAME_BYTES


# ---- quotas and the free-space floor (issue 18, items 4 and 5) -------------------------------------


def noise_jpeg(seed: int, size=(300, 300)) -> bytes:
    import numpy as np

    pixels = np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def test_a_students_store_has_quotas_for_classes_photos_and_bytes(tmp_path):
    """The review made 50 classes in 9 s, then a photo every 2 s, kept 24 h: each count is bounded now."""
    from core.quotas import QuotaError, Quotas

    quotas = Quotas(classes=2, photos_per_class=3, student_mb=1, total_mb=100, min_free_mb=0)
    store = OwnClassesStore(tmp_path / "students" / "a" / "own", quotas=quotas, everyone=tmp_path / "students")
    store.add_class("one")
    store.add_class("two")
    store.add_class("two")  # an existing class is no new one
    with pytest.raises(QuotaError, match="You have 2 classes, the most one student may make"):
        store.add_class("three")
    for seed in range(3):
        store.add_photo("one", noise_jpeg(seed))
    with pytest.raises(QuotaError, match="one has 3 photos, the most one class may hold"):
        store.add_photo("one", noise_jpeg(99))
    assert store.classes()["one"] == 3
    roomy = OwnClassesStore(tmp_path / "students" / "b" / "own", quotas=Quotas(student_mb=1, min_free_mb=0))
    roomy.add_class("big")
    with pytest.raises(QuotaError, match="of the 1 MB one student may store"):
        for seed in range(10, 40):  # ~170 kB each as stored: the megabyte runs out
            roomy.add_photo("big", noise_jpeg(seed, (512, 512)))
    assert 0 < roomy.usage()[1] <= 1024**2


def test_all_students_together_have_a_total(tmp_path):
    from core.quotas import QuotaError, Quotas

    everyone = tmp_path / "students"
    quotas = Quotas(classes=5, photos_per_class=50, student_mb=10, total_mb=1, min_free_mb=0)
    stores = [OwnClassesStore(everyone / t / "own", quotas=quotas, everyone=everyone) for t in ("a", "b", "c")]
    with pytest.raises(QuotaError, match="all students may store together"):
        for seed in range(60):  # tabs are free: three of them still share the class-wide total
            store = stores[seed % 3]
            store.add_class("x")
            store.add_photo("x", noise_jpeg(seed, (512, 512)))
    assert sum(s.usage()[1] for s in stores) <= 1024**2


def test_the_teachers_store_has_no_quota_but_keeps_the_floor(tmp_path, monkeypatch):
    from core import quotas
    from core.quotas import SpaceError

    store = OwnClassesStore(tmp_path / "own")
    for n in range(12):
        store.add_class(f"c{n}")  # no class limit for the teacher
    monkeypatch.setattr(quotas, "free_bytes", lambda path: 10 * 1024**2)  # 10 MB free, 500 MB floor
    with pytest.raises(SpaceError, match="disk is nearly full .10 MB free; Pet Lab keeps 500 MB free"):
        store.add_photo("c0", noise_jpeg(1))
    with pytest.raises(SpaceError):
        store.add_class("another")
    assert store.photos("c0") == [] and "another" not in store.classes()


def test_a_write_that_hits_a_full_disk_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    from core.quotas import SpaceError
    from core.teach import own_classes

    store = OwnClassesStore(tmp_path / "own")
    store.add_class("a")

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(own_classes, "atomic_write_bytes", full)
    with pytest.raises(SpaceError, match="nothing new can be stored now"):
        store.add_photo("a", noise_jpeg(3))
    assert store.photos("a") == []


def test_a_store_creates_nothing_until_its_first_class(tmp_path):
    store = OwnClassesStore(tmp_path / "students" / "t" / "own")
    assert store.classes() == {} and store.usage() == (0, 0)
    assert not (tmp_path / "students").exists()  # opening the Data page leaves no folder behind


def test_quotas_come_from_the_environment(monkeypatch):
    from core.quotas import Quotas

    monkeypatch.setenv("PETLAB_OWN_CLASSES", "4")
    monkeypatch.setenv("PETLAB_MIN_FREE_MB", "100")
    monkeypatch.setenv("PETLAB_OWN_MB", "lots")  # not a number: the default stays
    assert Quotas.from_env() == Quotas(classes=4, min_free_mb=100)
