"""The lesson's labelling step: a regular expression turns a file name into a breed."""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import PurePosixPath

# `regex` (not `re`): its matches take a timeout and release the GIL, so a catastrophic pattern
# typed by one student neither blocks the server nor runs for ever.
import regex

from core.i18n import N_, _

# fastai v2 `from_name_re` matches the file name only.
PETS_PATTERN = r"^(.+)_\d+\.jpg$"
# course-v3 used `from_name_re` on the full path, so its pattern anchors on the last "/".
COURSE_V3_PATTERN = r"/([^/]+)_\d+.jpg$"

PATTERN_NOTE = N_(  # translated where shown
    "fastai v2's `from_name_re` applies the pattern to the file name alone, so `^` anchors at the "
    "start of the name. The course-v3 notebook matched the whole path, so its pattern starts at the "
    "last `/`; in fastai v2 it needs `from_path_re`. Choose 'whole path' below to try it."
)


# Time budget for labelling one file list with a user's pattern (all files together).
MATCH_BUDGET_S = 2.0


class LabelError(ValueError):
    """A labelling pattern that cannot be used; the message is meant for the page."""


@dataclass
class LabelResult:
    """Labels for matched files plus what did not match."""

    labels: dict[str, str]  # relative path -> label
    unmatched: list[str] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels.values()))


def compile_pattern(pattern: str) -> regex.Pattern:
    """Compile a labelling regex, or raise LabelError saying what is wrong with it."""
    if not pattern:
        raise LabelError(_("The pattern is empty."))
    try:
        # VERSION0: the syntax of Python's re; NFC as the names it is matched against (see label_of)
        compiled = regex.compile(unicodedata.normalize("NFC", pattern), flags=regex.VERSION0)
    except (regex.error, ValueError, OverflowError) as err:
        raise LabelError(_("Invalid regular expression: {error}.").format(error=err)) from err
    if compiled.groups < 1:
        raise LabelError(_("The pattern needs one ( ) group that captures the label, e.g. `^(.+)_\\d+\\.jpg$`."))
    return compiled


def _too_slow(budget: float) -> LabelError:
    return LabelError(
        _(
            "The pattern took longer than {budget} s on these file names and was stopped. Patterns with a "
            "repetition inside a repetition, like `(a+)+` or `(\\w+)+`, try exponentially many ways to match: "
            "simplify it (the lesson's `^(.+)_\\d+\\.jpg$` needs no nesting)."
        ).format(budget=f"{budget:g}")
    )


def label_of(
    rel_path: str, compiled: regex.Pattern, match_on: str = "name", timeout: float | None = MATCH_BUDGET_S
) -> str | None:
    """The label for one relative path, or None when the pattern does not match (TimeoutError past timeout).

    The name is matched NFC-normalised, so a pattern typed anywhere matches a name written on a Mac (NFD),
    and the label is the same text whichever way its file system spelled it.
    """
    subject = PurePosixPath(rel_path).name if match_on == "name" else "/" + rel_path.lstrip("/")
    subject = unicodedata.normalize("NFC", subject)
    found = compiled.search(subject, timeout=timeout)
    if not found or found.group(1) is None or found.group(1) == "":
        return None
    return found.group(1)


def label_files(
    rel_paths: list[str], pattern: str, match_on: str = "name", budget: float = MATCH_BUDGET_S
) -> LabelResult:
    """Label paths with a regex on the file name (fastai `from_name_re`) or on the whole path (`from_path_re`).

    All matches together get `budget` seconds; past it LabelError says the pattern is too slow.
    """
    if match_on not in ("name", "path"):
        raise LabelError(f"match_on must be 'name' or 'path', not {match_on!r}")
    compiled = compile_pattern(pattern)
    labels: dict[str, str] = {}
    unmatched: list[str] = []
    deadline = time.monotonic() + budget
    for rel in rel_paths:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _too_slow(budget)
        try:
            label = label_of(rel, compiled, match_on, timeout=left)
        except TimeoutError as err:
            raise _too_slow(budget) from err
        if label is None:
            unmatched.append(rel)
        else:
            labels[rel] = label
    return LabelResult(labels=labels, unmatched=unmatched)


def label_by_parent(rel_paths: list[str]) -> LabelResult:
    """Label each file by its parent folder (fastai `parent_label`, NFC-normalised); top-level files are unmatched."""
    labels: dict[str, str] = {}
    unmatched: list[str] = []
    for rel in rel_paths:
        parent = unicodedata.normalize("NFC", PurePosixPath(rel).parent.name)
        if parent:
            labels[rel] = parent
        else:
            unmatched.append(rel)
    return LabelResult(labels=labels, unmatched=unmatched)


def is_cat_breed(label: str) -> bool:
    """In Oxford-IIIT Pet the cat breeds are the capitalised names (Abyssinian vs beagle)."""
    return label[:1].isupper()
