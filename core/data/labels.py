"""The lesson's labelling step: a regular expression turns a file name into a breed."""

from __future__ import annotations

import re
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
# Bounds checked on the parsed pattern BEFORE it is compiled: compiling holds the interpreter lock and
# unrolls counted repetitions, so `((a{300}){200}){100}` (21 characters) built 6 million nodes (2.5 GB,
# seconds with every other tab frozen) before any time budget could start. The lesson's pattern has
# size 12; file-name patterns need a few dozen.
MAX_PATTERN_CHARS = 300
MAX_REPEAT = 1000  # the largest count in `{m}` / `{m,n}`
MAX_PATTERN_SIZE = 10_000  # pattern_size(): its atoms, each counted as often as nested repetitions copy it


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


def _parse(pattern: str):
    """Python's own regex parser (fastai's `from_name_re` uses `re`): a tree of (op, argument) pairs, no compiling."""
    from re import _parser  # the parser behind re.compile: pure Python, linear in the pattern's length

    try:
        return _parser.parse(pattern)
    except (re.error, ValueError, OverflowError, RecursionError) as err:
        raise LabelError(_("Invalid regular expression: {error}.").format(error=err)) from err


def _size(node, ops) -> int:
    """The atoms of a parsed (sub)pattern, each counted as often as the repetitions around it copy it."""
    total = 0
    for op, arg in node:
        if op in ops["repeats"]:
            low, high, body = arg
            for count in (low, high):
                if count != ops["unbounded"] and count > MAX_REPEAT:
                    raise LabelError(
                        _("The pattern repeats something {count} times; the limit is {limit}.").format(
                            count=f"{count:,}", limit=f"{MAX_REPEAT:,}"
                        )
                    )
            # a counted repetition is unrolled when compiled: {m,n} costs m copies, plus one for the rest
            total += _size(body, ops) * (max(low, 1) + (1 if high != low else 0))
        else:
            total += 1 + sum(_size(part, ops) for part in _subpatterns(arg, ops["sub"]))
    return total


def _subpatterns(arg, sub_type) -> list:
    """The sub-patterns inside one node's argument (groups, branches, look-arounds, conditionals)."""
    if isinstance(arg, sub_type):
        return [arg]
    if isinstance(arg, tuple | list):
        return [found for item in arg for found in _subpatterns(item, sub_type)]
    return []


def pattern_size(pattern: str) -> int:
    """A static bound on what compiling pattern builds: its atoms, nested repetition counts multiplied.

    `^(.+)_\\d+\\.jpg$` is 12; `((a{300}){200}){100}` over 6 million. Raises LabelError for a pattern
    Python's parser refuses or a count over MAX_REPEAT. Nothing is compiled.
    """
    from re import _constants, _parser

    ops = {
        "repeats": {_constants.MAX_REPEAT, _constants.MIN_REPEAT, getattr(_constants, "POSSESSIVE_REPEAT", None)},
        "unbounded": _constants.MAXREPEAT,
        "sub": _parser.SubPattern,
    }
    return _size(_parse(pattern), ops)


def check_pattern(pattern: str) -> None:
    """Refuse, before any compiling, a pattern too long, with too big a count, or whose repetitions multiply."""
    if not pattern:
        raise LabelError(_("The pattern is empty."))
    if len(pattern) > MAX_PATTERN_CHARS:
        raise LabelError(
            _("The pattern is {n} characters long; the limit is {limit}.").format(
                n=f"{len(pattern):,}", limit=MAX_PATTERN_CHARS
            )
        )
    size = pattern_size(pattern)
    if size > MAX_PATTERN_SIZE:
        raise LabelError(
            _(
                "The pattern's repetitions multiply to {size} copies (the limit is {limit}): a repetition inside a "
                "repetition, like `((a{{300}}){{200}}){{100}}`, copies its inside once per count. Remove one or lower "
                "its count."
            ).format(size=f"{size:,}", limit=f"{MAX_PATTERN_SIZE:,}")
        )


def compile_pattern(pattern: str) -> regex.Pattern:
    """Compile a labelling regex after the static checks (check_pattern), or raise LabelError saying what is wrong."""
    check_pattern(pattern)
    try:
        # VERSION0: the syntax of Python's re; NFC as the names it is matched against (see label_of);
        # cache_pattern=False: the regex module's own cache (500 patterns, module-wide) never holds what one
        # student typed
        compiled = regex.compile(unicodedata.normalize("NFC", pattern), flags=regex.VERSION0, cache_pattern=False)
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
