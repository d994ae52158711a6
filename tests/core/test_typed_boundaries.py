"""Records and events cross modules typed: no code outside the parser reads their fields by string key.

Issue 20: run.json was built as a dict, training events and the progress file were read as event["kind"],
job records compared "running" in 53 places. Every stored record and event is now a dataclass read by
core.codec.parse_dataclass; this test reads the code (ast) and fails on `x["status"]`, `x.get("kind")`
... for the fields of those records, anywhere in the app outside that parser.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARSERS = {ROOT / "core" / "codec.py", ROOT / "core" / "store" / "records.py"}  # the parser; run.json's old forms
# fields of the typed records and events that no other structure here uses as a string key
RECORD_KEYS = {
    "status", "kind", "run_id", "last", "row", "describe", "n_epoch", "n_iter", "suggestions", "lrs", "losses",
    "points", "probs", "targets", "valid_paths", "lr_finder", "bn_note", "trained_stages", "model_run",
    "dataset_changed", "model_changed", "queued_by", "pid", "updated", "reason", "when", "meta", "image_ids",
    "stop_requested", "epochs", "classes", "config", "created", "runs", "versions", "machine", "threads",
    "number", "stored_at", "filename", "tab", "job_id", "precision", "seconds", "error_rate", "train_loss",
    "valid_loss", "spec",
}  # fmt: skip


def string_key_reads(source: str, keys: set[str] = RECORD_KEYS) -> list[tuple[int, str]]:
    """(line, key) of every `x["key"]` and `x.get("key", ...)` in source whose key is one of keys."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("get", "pop", "setdefault")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            key = node.args[0].value
        else:
            continue
        if isinstance(key, str) and key in keys:
            found.append((node.lineno, key))
    return found


def app_files() -> list[Path]:
    return [ROOT / "app.py", *(p for folder in ("core", "ui", "pages") for p in sorted((ROOT / folder).rglob("*.py")))]


def test_no_record_field_is_read_by_string_key_outside_the_parser():
    allowed = {  # not our records: other structures whose keys are named like a record's fields
        ("core/train/curves.py", "error_rate"),  # SERIES_COLORS: a chart's colour per series
        ("core/train/interpretation.py", "error_rate"),  # a DataFrame column
        ("core/train/interpretation.py", "points"),
        (
            "core/prep/__main__.py",
            "error_rate",
        ),  # a run summary's scores: a dict of metric names  # Streamlit's plotly selection event
    }
    found = []
    for path in app_files():
        if path in PARSERS:
            continue
        rel = path.relative_to(ROOT).as_posix()
        found += [
            f"{rel}:{line}: [{key!r}]" for line, key in string_key_reads(path.read_text()) if (rel, key) not in allowed
        ]
    assert found == []


def test_the_check_finds_a_planted_string_key_read():
    planted = 'def f(event, job):\n    if event["kind"] == "batch":\n        return job.get("status", "queued")\n'
    assert string_key_reads(planted) == [(2, "kind"), (3, "status")]
    assert string_key_reads('frame["label"].unique()\nschedule["lr"]\n') == []  # other structures' keys are fine
