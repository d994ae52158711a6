"""Pets download: the real untar_data path against a loopback HTTP server, local copies, offline message."""

import functools
import http.server
import io
import tarfile
import threading
from pathlib import Path

import pytest

from core import settings
from core.data import pets
from core.data.datasets import DatasetError, scan_dataset
from core.data.synthetic import make_pets_like


def make_pets_archive(folder: Path) -> Path:
    """A tiny .tgz with the real layout: oxford-iiit-pet/images/*.jpg and annotations/."""
    src = folder / "src" / "oxford-iiit-pet"
    make_pets_like(src / "images", n_per_class=3)
    (src / "annotations").mkdir()
    (src / "annotations" / "list.txt").write_text("# Image CLASS-ID SPECIES BREED ID\n")
    archive = folder / "serve" / pets.ARCHIVE_NAME
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="oxford-iiit-pet")
    return archive


@pytest.fixture
def loopback_server(tmp_path):
    """Serve a folder on 127.0.0.1 (a random port) for the duration of one test."""
    archive = make_pets_archive(tmp_path)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(archive.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{pets.ARCHIVE_NAME}", archive
    server.shutdown()
    server.server_close()


def test_download_and_extract_from_loopback(loopback_server, data_folder):
    url, archive = loopback_server
    seen = []
    images = pets.download_pets(data_folder, url=url, progress=lambda done, total: seen.append((done, total)))
    assert images == pets.pets_folder(data_folder) / "images"
    assert (images.parent / "annotations" / "list.txt").is_file()
    assert len(list(images.glob("*.jpg"))) == 18
    assert seen and seen[-1][0] >= archive.stat().st_size  # the progress hook saw every byte
    assert seen[-1][1] == archive.stat().st_size
    assert pets.find_pets(data_folder) == images
    result = scan_dataset(pets.pets_spec(images))
    assert result.classes == ["Bengal", "Persian", "Siamese", "beagle", "boxer", "pug"]
    # a second call finds the extracted copy and does not download again
    assert pets.download_pets(data_folder, url="http://127.0.0.1:9/never") == images


def test_download_is_checked_like_untar_data(loopback_server, data_folder, monkeypatch):
    """fastai's download_checks (size, MD5) refuse a file that is not the one listed for the URL."""
    url, archive = loopback_server
    import fastdownload.core

    monkeypatch.setattr(fastdownload.core, "read_checks", lambda fmod: {url: (archive.stat().st_size + 1, "0" * 32)})
    with pytest.raises(DatasetError, match="checksum"):
        pets.download_pets(data_folder, url=url)
    assert not list(settings.archive_dir(data_folder).glob("*"))  # nothing half-downloaded is kept
    assert pets.find_pets(data_folder) is None
    monkeypatch.setattr(
        fastdownload.core, "read_checks", lambda fmod: {url: fastdownload.core.path_stats(archive)}
    )  # the right size and MD5 pass
    assert pets.download_pets(data_folder, url=url).is_dir()


def test_offline_download_says_what_to_do(data_folder):
    with pytest.raises(DatasetError) as info:
        pets.download_pets(data_folder, url="http://127.0.0.1:9/oxford-iiit-pet.tgz", timeout=2)
    message = str(info.value)
    assert pets.ARCHIVE_NAME in message and "archive/" in message
    assert str(data_folder) not in message  # students read it: no server paths


def test_archive_already_in_place_is_extracted_without_network(tmp_path, data_folder):
    archive = make_pets_archive(tmp_path)
    url = "http://127.0.0.1:9/" + pets.ARCHIVE_NAME  # unreachable: the archive must be used as is
    dest = settings.archive_dir(data_folder) / pets.ARCHIVE_NAME
    dest.parent.mkdir(parents=True)
    dest.write_bytes(archive.read_bytes())
    images = pets.download_pets(data_folder, url=url)
    assert len(list(images.glob("*.jpg"))) == 18


def test_local_archive_and_folder(tmp_path, data_folder, monkeypatch):
    monkeypatch.setenv("PETLAB_FOLDERS", str(tmp_path))
    archive = make_pets_archive(tmp_path)
    images = pets.use_local_pets(archive, data_folder)
    assert images == pets.pets_folder(data_folder) / "images"
    assert len(list(images.glob("*.jpg"))) == 18
    assert pets.use_local_pets(tmp_path / "src" / "oxford-iiit-pet", data_folder).name == "images"


def test_local_copy_errors(tmp_path, data_folder, monkeypatch):
    monkeypatch.setenv("PETLAB_FOLDERS", str(tmp_path))
    with pytest.raises(DatasetError, match="Cannot open"):
        pets.use_local_pets(tmp_path / "missing.tgz", data_folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        pets.use_local_pets(tmp_path / "empty", data_folder)
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(b"not a tar at all")
    with pytest.raises(DatasetError, match="Cannot extract"):
        pets.use_local_pets(bad, data_folder)


def hostile_tgz(folder: Path) -> Path:
    """A .tgz whose members climb out with '../' and name an absolute path (the review's attack)."""
    archive = folder / "serve" / pets.ARCHIVE_NAME
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("oxford-iiit-pet/images/a_1.jpg", "../../../../" + str(folder / "escaped-X").lstrip("/"),
                     str(folder / "escaped-Y")):  # fmt: skip
            data = b"owned"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def serve(folder: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_hostile_tgz_by_url_writes_nothing_outside(tmp_path, data_folder):
    archive = hostile_tgz(tmp_path)
    server = serve(archive.parent)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{pets.ARCHIVE_NAME}"
        with pytest.raises(DatasetError, match="refused") as info:
            pets.download_pets(data_folder, url=url)
    finally:
        server.shutdown()
        server.server_close()
    assert not (tmp_path / "escaped-X").exists() and not (tmp_path / "escaped-Y").exists()
    assert not list(tmp_path.rglob("escaped-*"))
    assert not pets.pets_folder(data_folder).exists()
    assert str(data_folder) not in str(info.value)  # the message names the archive, not server folders
    assert not (settings.archive_dir(data_folder) / pets.ARCHIVE_NAME).exists()  # the bad download is removed


def test_links_and_devices_refuse_a_tgz(tmp_path, data_folder, monkeypatch):
    monkeypatch.setenv("PETLAB_FOLDERS", str(tmp_path))
    for kind in (tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE):
        archive = tmp_path / f"pets-{kind!r}.tgz".replace("'", "")
        with tarfile.open(archive, "w:gz") as tar:
            info = tarfile.TarInfo("oxford-iiit-pet/images/link_1.jpg")
            info.type, info.linkname = kind, "/etc/passwd"
            tar.addfile(info)
        with pytest.raises(DatasetError, match="refused"):
            pets.use_local_pets(archive, data_folder)
        assert not pets.pets_folder(data_folder).exists()


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x.tgz", "/etc/passwd", "http:///x.tgz"])
def test_only_http_urls_are_fetched(url, data_folder):
    with pytest.raises(DatasetError, match="Only http"):
        pets.download_pets(data_folder, url=url)
    assert not list(settings.archive_dir(data_folder).glob("*"))


def test_local_copy_is_no_path_oracle(tmp_path, data_folder):
    """Missing, unreadable and existing-but-forbidden paths get the same answer."""
    secret = tmp_path / "secret"
    secret.mkdir()
    locked = tmp_path / "locked.tgz"
    locked.write_bytes(b"x")
    locked.chmod(0)
    answers = set()
    for path in (tmp_path / "missing", secret, locked, Path("/etc")):
        with pytest.raises(DatasetError) as info:
            pets.use_local_pets(path, data_folder)
        answers.add(str(info.value).replace(str(path), "<typed>"))
    assert len(answers) == 1
