"""Pets download: the real untar_data path against a loopback HTTP server, local copies, offline message."""

import functools
import http.server
import tarfile
import threading
from pathlib import Path

import pytest

from core import pets
from core.datasets import DatasetError, scan_dataset
from core.synthetic import make_pets_like


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


def test_offline_download_says_what_to_do(data_folder):
    with pytest.raises(DatasetError) as info:
        pets.download_pets(data_folder, url="http://127.0.0.1:9/oxford-iiit-pet.tgz", timeout=2)
    message = str(info.value)
    assert pets.ARCHIVE_NAME in message
    assert str(pets.archive_dir(data_folder) / pets.ARCHIVE_NAME) in message


def test_archive_already_in_place_is_extracted_without_network(tmp_path, data_folder):
    archive = make_pets_archive(tmp_path)
    url = "http://127.0.0.1:9/" + pets.ARCHIVE_NAME  # unreachable: the archive must be used as is
    dest = pets.archive_dir(data_folder) / pets.ARCHIVE_NAME
    dest.parent.mkdir(parents=True)
    dest.write_bytes(archive.read_bytes())
    images = pets.download_pets(data_folder, url=url)
    assert len(list(images.glob("*.jpg"))) == 18


def test_local_archive_and_folder(tmp_path, data_folder):
    archive = make_pets_archive(tmp_path)
    images = pets.use_local_pets(archive, data_folder)
    assert images == pets.pets_folder(data_folder) / "images"
    assert len(list(images.glob("*.jpg"))) == 18
    assert pets.use_local_pets(tmp_path / "src" / "oxford-iiit-pet", data_folder).name == "images"


def test_local_copy_errors(tmp_path, data_folder):
    with pytest.raises(DatasetError, match="Nothing at"):
        pets.use_local_pets(tmp_path / "missing.tgz", data_folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        pets.use_local_pets(tmp_path / "empty", data_folder)
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(b"not a tar at all")
    with pytest.raises(DatasetError, match="Cannot extract"):
        pets.use_local_pets(bad, data_folder)
