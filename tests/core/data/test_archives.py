"""Safe zip extraction: nothing escapes the target, limits hold, non-images are listed and skipped."""

import io
import stat
import tarfile
import zipfile

import pytest
from PIL import Image

from core.data.archives import ArchiveError, extract_tgz, extract_zip


def jpeg_bytes(size=(8, 8), colour=(200, 10, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG")
    return buf.getvalue()


def make_zip(entries: dict[str, bytes], symlink: str | None = None) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    buf.seek(0)
    return buf


def test_images_extracted_others_listed(tmp_path):
    archive = make_zip(
        {
            "cats/a.jpg": jpeg_bytes(),
            "dogs/b.jpg": jpeg_bytes(),
            "notes.txt": b"hello",
            "__MACOSX/cats/._a.jpg": b"junk",
            "dogs/fake.jpg": b"not really",
        }
    )
    report = extract_zip(archive, tmp_path / "out")
    assert sorted(report.extracted) == ["cats/a.jpg", "dogs/b.jpg"]
    reasons = dict(report.skipped)
    assert reasons["notes.txt"] == "not an image"
    assert "hidden" in reasons["__MACOSX/cats/._a.jpg"]
    assert "not a readable image" in reasons["dogs/fake.jpg"]
    assert not (tmp_path / "out" / "dogs" / "fake.jpg").exists()


def test_path_escapes_and_links_are_refused(tmp_path):
    archive = make_zip(
        {"../evil.jpg": jpeg_bytes(), "/abs/evil.jpg": jpeg_bytes(), "ok/fine.jpg": jpeg_bytes()},
        symlink="ok/link.jpg",
    )
    target = tmp_path / "deep" / "out"
    report = extract_zip(archive, target)
    assert report.extracted == ["ok/fine.jpg"]
    assert not (tmp_path / "deep" / "evil.jpg").exists()
    assert {name for name, _ in report.skipped} == {"../evil.jpg", "/abs/evil.jpg", "ok/link.jpg"}
    assert all(p.resolve().is_relative_to(target.resolve()) for p in tmp_path.rglob("*.jpg") if "out" in str(p))


def test_file_count_limit(tmp_path):
    archive = make_zip({f"{i}.jpg": jpeg_bytes() for i in range(5)})
    with pytest.raises(ArchiveError, match="limit is 4"):
        extract_zip(archive, tmp_path / "out", max_files=4)


def test_total_size_limit_counts_real_bytes(tmp_path):
    archive = make_zip({"a.jpg": jpeg_bytes((64, 64)), "b.jpg": jpeg_bytes((64, 64))})
    with pytest.raises(ArchiveError, match="unpacks to more than"):
        extract_zip(archive, tmp_path / "out", max_total_bytes=900)


def test_pixel_limit_per_image(tmp_path):
    archive = make_zip({"small.jpg": jpeg_bytes((8, 8)), "big.jpg": jpeg_bytes((100, 100))})
    report = extract_zip(archive, tmp_path / "out", max_pixels=5000)
    assert report.extracted == ["small.jpg"]
    assert "MP limit" in dict(report.skipped)["big.jpg"]


def test_not_a_zip(tmp_path):
    with pytest.raises(ArchiveError, match="Not a readable .zip"):
        extract_zip(io.BytesIO(b"PK but not really"), tmp_path / "out")


def test_refused_zip_leaves_no_folder(tmp_path):
    with pytest.raises(ArchiveError):
        extract_zip(make_zip({f"{i}.jpg": jpeg_bytes() for i in range(5)}), tmp_path / "out", max_files=4)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ArchiveError):
        extract_zip(io.BytesIO(b"PK but not really"), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    report = extract_zip(make_zip({"notes.txt": b"hi"}), tmp_path / "out")
    assert not report.extracted and not (tmp_path / "out").exists()


def _tgz(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, kind in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            data = b"x" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = "pets/images/a_1.jpg"  # a link inside the archive is refused too
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize(
    ("name", "kind", "why"),
    [
        ("/tmp/petlab-abs-Y", tarfile.REGTYPE, "absolute path"),
        ("../../petlab-up-X", tarfile.REGTYPE, "outside"),
        ("pets/images/link.jpg", tarfile.SYMTYPE, "is a link"),
        ("pets/images/hard.jpg", tarfile.LNKTYPE, "is a link"),
        ("pets/images/dev", tarfile.CHRTYPE, "device"),
        ("pets/images/fifo", tarfile.FIFOTYPE, "device, pipe"),
    ],
)
def test_tgz_refuses_escapes_links_and_devices(tmp_path, name, kind, why):
    archive = _tgz(tmp_path / "bad.tgz", [("pets/images/a_1.jpg", tarfile.REGTYPE), (name, kind)])
    target = tmp_path / "data" / "pets"
    with pytest.raises(ArchiveError, match=why) as info:
        extract_tgz(archive, target)
    assert "bad.tgz" in str(info.value) and str(tmp_path) not in str(info.value)
    assert not target.exists() and not (tmp_path / "data" / "pets.partial").exists()
    assert not (tmp_path / "petlab-up-X").exists()


def test_tgz_limits_and_good_archive(tmp_path):
    archive = _tgz(tmp_path / "ok.tgz", [(f"pets/images/a_{i}.jpg", tarfile.REGTYPE) for i in range(3)])
    with pytest.raises(ArchiveError, match="more than 2 members"):
        extract_tgz(archive, tmp_path / "out", max_files=2)
    target = extract_tgz(archive, tmp_path / "out")
    assert sorted(p.name for p in (target / "images").iterdir()) == ["a_0.jpg", "a_1.jpg", "a_2.jpg"]


def zip_with_raw_names(entries: dict[bytes, bytes]) -> io.BytesIO:
    """A zip whose member names are the given bytes with the UTF-8 flag unset, as a Mac (UTF-8 bytes) or a
    Chinese Windows (GBK bytes) writes them: written under ASCII stand-ins of the same length, then patched."""
    stand_ins = {raw: (b"%0" + str(len(raw)).encode() + b"d") % i for i, raw in enumerate(entries, start=10**6)}
    assert all(len(s) == len(r) for r, s in stand_ins.items())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for raw, data in entries.items():
            zf.writestr(stand_ins[raw].decode(), data)
    data = buf.getvalue()
    for raw, stand_in in stand_ins.items():
        assert data.count(stand_in) == 2  # the local header and the central directory
        data = data.replace(stand_in, raw)
    return io.BytesIO(data)


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_chinese_folder_names_survive_any_zip_tool(tmp_path, encoding):
    """Issue 19 item 5: class folders named 猫/狗 in a zip from a Mac (UTF-8, unflagged) or a Chinese Windows
    (GBK, unflagged) become folders 猫/狗, not cp437 mojibake; a Mac's NFD names become NFC."""
    import unicodedata

    names = [
        "猫/a.jpg",
        "狗/b.jpg",
        unicodedata.normalize("NFD", "café/c.jpg") if encoding == "utf-8" else "咖啡/c.jpg",
    ]
    report = extract_zip(zip_with_raw_names({n.encode(encoding): jpeg_bytes() for n in names}), tmp_path / "out")
    expected = sorted(unicodedata.normalize("NFC", n) for n in names)
    assert sorted(report.extracted) == expected
    assert sorted(p.parent.name for p in (tmp_path / "out").rglob("*.jpg")) == sorted(n.split("/")[0] for n in expected)


def test_flagged_utf8_and_cp437_names_are_read_as_written(tmp_path):
    archive = make_zip({"猫/a.jpg": jpeg_bytes()})  # zipfile flags a non-ASCII name as UTF-8
    assert extract_zip(archive, tmp_path / "a").extracted == ["猫/a.jpg"]
    cp437 = zip_with_raw_names({"caf\u00e9/a.jpg".encode("cp437"): jpeg_bytes()})  # an old DOS tool's é (0x82)
    assert extract_zip(cp437, tmp_path / "b").extracted == ["café/a.jpg"]
