"""Scanning: labels, sizes from headers, corrupt files never fatal, a stable split and fingerprint."""

import numpy as np
import pytest
from PIL import Image

from core.data.datasets import (
    DatasetError,
    DatasetSpec,
    folder_signature,
    list_image_files,
    read_header,
    scan_dataset,
    split_counts,
    split_valid,
)
from core.data.pets import pets_spec
from core.data.synthetic import make_folder_dataset, make_pets_like


def test_scan_pets_like(pets_like):
    result = scan_dataset(pets_spec(pets_like))
    assert result.n_images == 60
    assert result.classes == ["Bengal", "Persian", "Siamese", "beagle", "boxer", "pug"]
    assert result.unmatched == [] and result.corrupt == []
    row = result.items.iloc[0]
    with Image.open(row["path"]) as img:
        assert (row["width"], row["height"]) == img.size
    assert int(result.items["is_valid"].sum()) == 12  # int(0.2 * 60)


def test_corrupt_and_unmatched_files_are_reported(tmp_path):
    root = make_pets_like(tmp_path / "ds", n_per_class=3)
    (root / "Bengal_99.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    good = (root / "pug_1.jpg").read_bytes()
    (root / "pug_98.jpg").write_bytes(good[: len(good) // 2])  # cut off: no end-of-image marker
    (root / "notes.txt").write_text("ignored")
    Image.new("RGB", (10, 10)).save(root / "weird-name.png")
    result = scan_dataset(pets_spec(root).with_labelling("regex", r"^(.+)_\d+\.(?:jpg|png)$", "name"))
    corrupt = dict(result.corrupt)
    assert set(corrupt) == {"Bengal_99.jpg", "pug_98.jpg"}
    assert "truncated" in corrupt["pug_98.jpg"]
    assert result.unmatched == ["weird-name.png"]
    assert result.n_images == 18


def test_header_scan_rejects_decompression_bombs(tmp_path):
    path = tmp_path / "big.png"
    Image.new("1", (13000, 12000)).save(path)  # 156 MP, tiny file
    with pytest.raises(ValueError, match="MP limit"):
        read_header(path)


def test_parent_folder_labels(tmp_path):
    root = make_folder_dataset(tmp_path / "f", n_per_class=4, classes=("cat", "dog", "fish"))
    spec = DatasetSpec(name="f", kind="folder", root=str(root), label_from="parent")
    result = scan_dataset(spec)
    assert result.classes == ["cat", "dog", "fish"]
    assert result.n_images == 12


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        list_image_files(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="No images"):
        scan_dataset(DatasetSpec(name="e", kind="folder", root=str(tmp_path / "empty")))


def test_hidden_files_and_folders_are_skipped(tmp_path):
    make_pets_like(tmp_path / "d" / ".cache", n_per_class=1)
    make_pets_like(tmp_path / "d" / "images", n_per_class=1)
    Image.new("RGB", (4, 4)).save(tmp_path / "d" / ".hidden_1.jpg")
    assert all(p.startswith("images/") for p in list_image_files(tmp_path / "d"))


def test_split_is_seeded_and_sized():
    a, b, c = split_valid(100, 0.2, 42), split_valid(100, 0.2, 42), split_valid(100, 0.2, 7)
    assert a.sum() == 20 and np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(DatasetError):
        split_valid(10, 1.5)


def test_split_counts_table(pets_like):
    table = split_counts(scan_dataset(pets_spec(pets_like)).items)
    assert list(table.columns) == ["class", "train", "valid", "total", "valid %"]
    assert table["total"].sum() == 60 and table["valid"].sum() == 12


def test_fingerprint_and_signature_track_changes(tmp_path):
    root = make_pets_like(tmp_path / "ds", n_per_class=2)
    spec = pets_spec(root)
    first, sig = scan_dataset(spec).fingerprint, folder_signature(root)
    assert scan_dataset(spec).fingerprint == first
    (root / "pug_2.jpg").unlink()
    assert scan_dataset(spec).fingerprint != first and folder_signature(root) != sig
    other_seed = DatasetSpec(**{**spec.__dict__, "seed": 1})
    assert scan_dataset(other_seed).fingerprint != scan_dataset(spec).fingerprint


def test_header_sizes_match_pil_for_every_format(tmp_path):
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (37, 53, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the header size stays the stored one
    cases = {
        "plain.jpg": dict(format="JPEG"),
        "progressive.jpg": dict(format="JPEG", progressive=True),
        "exif.jpg": dict(format="JPEG", exif=exif.tobytes()),
        "a.png": dict(format="PNG"),
        "a.gif": dict(format="GIF"),
        "a.webp": dict(format="WEBP"),
    }
    for name, kwargs in cases.items():
        img.save(tmp_path / name, **kwargs)
        assert read_header(tmp_path / name) == (53, 37), name


def _hostile_folder(tmp_path):
    """Pets-like images plus what /etc or / hold: a dangling link, a socket, a pipe, a link out."""
    import os
    import socket

    root = make_pets_like(tmp_path / "ds", n_per_class=2)
    (root / "gone_1.jpg").symlink_to(tmp_path / "nowhere.jpg")
    outside = tmp_path / "secret_1.jpg"
    Image.new("RGB", (8, 8)).save(outside)
    (root / "secret_1.jpg").symlink_to(outside)
    (root / "inside_1.jpg").symlink_to(root / "pug_1.jpg")  # a link within the folder is fine
    os.mkfifo(root / "pipe_1.jpg")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock_1.jpg"))
    (root / "sub").mkdir()
    Image.new("RGB", (8, 8)).save(root / "sub" / "pug_7.jpg")
    return root, sock


def test_scan_skips_links_sockets_and_pipes(tmp_path):
    root, sock = _hostile_folder(tmp_path)
    try:
        result = scan_dataset(pets_spec(root))
        signature = folder_signature(root)  # the review: os.stat on a dangling link crashed every page
    finally:
        sock.close()
    assert signature
    skipped = dict(result.skipped)
    assert set(skipped) == {"gone_1.jpg", "secret_1.jpg", "pipe_1.jpg", "sock_1.jpg"}
    assert "dangling" in skipped["gone_1.jpg"] and "outside" in skipped["secret_1.jpg"]
    assert "not a regular file" in skipped["pipe_1.jpg"]
    assert "inside_1.jpg" in set(result.items["rel"]) and "sub/pug_7.jpg" in set(result.items["rel"])
    assert result.n_images == 12 + 2 and not result.corrupt
    assert all(str(tmp_path) not in why for why in skipped.values())


def test_unreadable_folder_is_listed_not_raised(tmp_path, monkeypatch):
    import os

    root = make_pets_like(tmp_path / "ds", n_per_class=2)
    (root / "locked").mkdir()
    real = os.scandir

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = scan_dataset(pets_spec(root))
    assert result.n_images == 12
    assert result.skipped == [("locked", "folder cannot be read: Permission denied")]
    assert folder_signature(root)


def test_messages_name_no_server_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError) as info:
        scan_dataset(DatasetSpec(name="e", kind="folder", root=str(tmp_path / "empty")))
    assert str(tmp_path) not in str(info.value)
    root = make_pets_like(tmp_path / "ds", n_per_class=1)
    (root / "Bengal_99.jpg").write_bytes(b"GIF89a broken")
    result = scan_dataset(pets_spec(root))
    assert result.corrupt and all(str(tmp_path) not in why for _, why in result.corrupt)


# ---------------------------------------------------------------- wrapping folders and dataset checks
def zip_of(folder, zip_path):
    """Zip a folder the way 'Compress fashion' does: every member starts with the folder's name."""
    import zipfile

    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(folder.rglob("*.jpg")):
            archive.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    return zip_path


def test_zip_with_one_wrapping_folder_of_named_files_is_labelled_by_file_name(tmp_path):
    from core.data.archives import extract_zip
    from core.data.datasets import folder_spec

    make_pets_like(tmp_path / "fashion", n_per_class=3, classes=("ankle_boot", "bag", "coat"))
    report = extract_zip(zip_of(tmp_path / "fashion", tmp_path / "fashion.zip"), tmp_path / "out")
    spec = folder_spec("fashion", "zip", report.target, report.extracted)
    assert spec.root.endswith("/out/fashion") and spec.label_from == "regex"
    assert scan_dataset(spec).classes == ["ankle_boot", "bag", "coat"]  # not one class "fashion"


def test_zip_with_one_wrapping_folder_of_class_folders_is_labelled_from_the_level_below(tmp_path):
    from core.data.archives import extract_zip
    from core.data.datasets import folder_spec

    make_folder_dataset(tmp_path / "fashion", n_per_class=2, classes=("bag", "coat"))
    report = extract_zip(zip_of(tmp_path / "fashion", tmp_path / "f.zip"), tmp_path / "out")
    spec = folder_spec("f", "zip", report.target, report.extracted)
    assert spec.label_from == "parent"
    assert scan_dataset(spec).classes == ["bag", "coat"]


def test_wrapping_prefix_stops_at_the_level_that_holds_images():
    from core.data.datasets import wrapping_prefix

    assert wrapping_prefix(["a/b/x_1.jpg", "a/b/y_2.jpg"]) == "a/b"
    assert wrapping_prefix(["a/cat/1.jpg", "a/dog/1.jpg"]) == "a"
    assert wrapping_prefix(["cat/1.jpg", "dog/1.jpg"]) == ""
    assert wrapping_prefix(["a/x_1.jpg", "y_1.jpg"]) == ""
    assert wrapping_prefix([]) == ""


def test_folder_with_a_wrapping_folder_is_read_from_below_it(tmp_path):
    from core.data.datasets import detect_layout, folder_spec

    make_folder_dataset(tmp_path / "top" / "wrap", n_per_class=2, classes=("cat", "dog"))
    layout = detect_layout(tmp_path / "top")
    assert (layout.root, layout.wrapper, layout.label_from) == (tmp_path / "top" / "wrap", "wrap", "parent")
    flat = make_pets_like(tmp_path / "flat", n_per_class=2)
    assert folder_spec("flat", "folder", flat) == DatasetSpec("flat", "folder", str(flat.resolve()), "regex")


def kinds(scan):
    from core.data.datasets import check_dataset

    return [check.kind.value for check in check_dataset(scan)]


def test_checks_a_one_class_dataset(tmp_path):
    root = make_folder_dataset(tmp_path / "one", n_per_class=20, classes=("fashion",))
    scan = scan_dataset(DatasetSpec(name="one", kind="zip", root=str(root), label_from="parent"))
    assert kinds(scan) == ["one_class"]


def test_checks_own_classes_with_seven_photos(tmp_path):
    from core.data.datasets import check_dataset

    root = make_folder_dataset(tmp_path / "own", n_per_class=7, classes=("mug", "pen"))
    scan = scan_dataset(DatasetSpec(name="own", kind="own", root=str(root), label_from="parent"))
    assert int(scan.items["is_valid"].sum()) == 2
    checks = {check.kind.value: check for check in check_dataset(scan)}
    assert set(checks) >= {"few_images", "few_valid"}
    assert checks["few_images"].classes == ("mug", "pen")
    assert "Only 2 validation images" in checks["few_valid"].message


def test_checks_a_class_without_validation_image(tmp_path):
    from core.data.datasets import check_dataset

    root = make_folder_dataset(tmp_path / "ds", n_per_class=30, classes=("a", "b"))
    make_folder_dataset(tmp_path / "ds", n_per_class=1, classes=("rare",), seed=3)
    scan = scan_dataset(DatasetSpec(name="ds", kind="folder", root=str(root), label_from="parent"))
    scan.items.loc[scan.items["label"] == "rare", "is_valid"] = False
    found = {c.kind.value: c for c in check_dataset(scan)}
    assert found["no_valid"].classes == ("rare",) and "1 class without" in found["no_valid"].message
    assert found["few_images"].classes == ("rare",)


def test_checks_pass_a_healthy_dataset(pets_like):
    assert kinds(scan_dataset(pets_spec(pets_like))) == []


def test_four_photos_are_refused_with_their_numbers_not_only_0_validation_images(tmp_path):
    from core.data.datasets import check_dataset, training_refusal

    root = make_folder_dataset(tmp_path / "own", n_per_class=2, classes=("bears", "cats"))
    scan = scan_dataset(DatasetSpec(name="own", kind="own", root=str(root), label_from="parent"))
    checks = check_dataset(scan)
    assert not any("Only 0 validation" in c.message for c in checks)
    refused = training_refusal(scan)
    assert refused is not None and refused.kind.value == "no_split" and refused.blocking
    assert (
        "4 images" in refused.message and "Add at least 1 more" in refused.message and "5 give one" in refused.message
    )


def test_a_class_with_no_training_image_is_refused(tmp_path):
    from core.data.datasets import training_refusal

    root = make_folder_dataset(tmp_path / "ds", n_per_class=10, classes=("a", "b"))
    make_folder_dataset(tmp_path / "ds", n_per_class=1, classes=("rare",), seed=3)
    scan = scan_dataset(DatasetSpec(name="ds", kind="folder", root=str(root), label_from="parent"))
    scan.items.loc[scan.items["label"] == "rare", "is_valid"] = True
    refused = training_refusal(scan)
    assert refused is not None and refused.kind.value == "no_train" and refused.classes == ("rare",)


def test_one_validation_image_is_said_plainly(tmp_path):
    from core.data.datasets import check_dataset, training_refusal

    root = make_folder_dataset(tmp_path / "own", n_per_class=3, classes=("a", "b"))  # 6 images: 1 validation
    scan = scan_dataset(DatasetSpec(name="own", kind="own", root=str(root), label_from="parent"))
    few = [c for c in check_dataset(scan) if c.kind.value == "few_valid"]
    assert training_refusal(scan) is None and "Only 1 validation image: it alone decides" in few[0].message
