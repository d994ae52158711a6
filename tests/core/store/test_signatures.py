"""Dataset folder signatures remembered server-wide (core.store.signatures)."""


def test_dataset_signature_is_remembered_until_a_folder_changes(tmp_path, monkeypatch):
    """The sidebar's scan key: no walk of every image per rerun, yet an added, removed or renamed image counts at once."""
    from core.data import datasets
    from core.data.synthetic import make_folder_dataset
    from core.store import signatures

    root = make_folder_dataset(tmp_path / "set", n_per_class=3, classes=("cat", "dog"))
    walks = []
    real = datasets.folder_signature
    monkeypatch.setattr(datasets, "folder_signature", lambda r: walks.append(r) or real(r))
    first = signatures.dataset_signature(root)
    assert first == real(root) and signatures.dataset_signature(root) == first and len(walks) == 1  # remembered

    cat = next((root / "cat").iterdir())
    (root / "cat" / "new.jpg").write_bytes(cat.read_bytes())  # added in a subfolder: its mtime moves
    added = signatures.dataset_signature(root)
    assert added != first and added == real(root)
    (root / "cat" / "new.jpg").rename(root / "dog" / "new.jpg")  # moved to another class
    assert signatures.dataset_signature(root) == real(root) != added
    cat.write_bytes(cat.read_bytes() + b"\0")  # rewritten in place: seen once the memo is older than the TTL
    monkeypatch.setattr(signatures, "SIGNATURE_TTL_S", 0.0)
    assert signatures.dataset_signature(root) == real(root)
