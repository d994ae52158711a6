"""The lesson's regex step: name vs path matching, bad patterns, parent-folder labels."""

import pytest

from core.data.labels import (
    COURSE_V3_PATTERN,
    PETS_PATTERN,
    LabelError,
    compile_pattern,
    is_cat_breed,
    label_by_parent,
    label_files,
)

FILES = ["great_pyrenees_173.jpg", "Abyssinian_1.jpg", "images/Bengal_12.jpg", "README.txt.jpg", "pug.jpg"]


def test_default_pattern_labels_pets_names():
    result = label_files(FILES, PETS_PATTERN)
    assert result.labels == {
        "great_pyrenees_173.jpg": "great_pyrenees",
        "Abyssinian_1.jpg": "Abyssinian",
        "images/Bengal_12.jpg": "Bengal",
    }
    assert result.unmatched == ["README.txt.jpg", "pug.jpg"]
    assert result.classes == ["Abyssinian", "Bengal", "great_pyrenees"]


def test_course_v3_pattern_needs_the_whole_path():
    # from_name_re sees only the name, which has no "/": nothing matches
    assert label_files(FILES, COURSE_V3_PATTERN, "name").labels == {}
    by_path = label_files(FILES, COURSE_V3_PATTERN, "path")
    assert by_path.labels["images/Bengal_12.jpg"] == "Bengal"
    assert by_path.labels["great_pyrenees_173.jpg"] == "great_pyrenees"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [("(unclosed", "Invalid regular expression"), ("no_group_\\d+", "one \\( \\) group"), ("", "empty")],
)
def test_bad_patterns_raise_label_error(pattern, message):
    with pytest.raises(LabelError, match=message):
        compile_pattern(pattern)


def test_unknown_match_mode():
    with pytest.raises(LabelError):
        label_files(FILES, PETS_PATTERN, "folder")


def test_empty_group_is_unmatched():
    assert label_files(["_1.jpg"], r"^(.*)_\d+\.jpg$").unmatched == ["_1.jpg"]


def test_parent_labels():
    result = label_by_parent(["cat/1.jpg", "dog/a/2.jpg", "top.jpg"])
    assert result.labels == {"cat/1.jpg": "cat", "dog/a/2.jpg": "a"}
    assert result.unmatched == ["top.jpg"]


def test_cat_breeds_are_capitalised():
    assert is_cat_breed("Siamese") and not is_cat_breed("pug")


@pytest.mark.parametrize(
    ("pattern", "name"), [(r"^(a|aa)+$", "a" * 34 + "!.jpg"), (r"^(\w|\w\w)+$", "b" * 34 + "!.jpg")]
)
def test_catastrophic_pattern_is_stopped_with_a_message(pattern, name):
    """The review froze the server with nested repetition; the match budget stops it instead."""
    with pytest.raises(LabelError, match="took longer than 0.3 s"):
        label_files(["ok_1.jpg", name], pattern, budget=0.3)


def test_budget_covers_all_files_together():
    names = [f"{'a' * 26}!{i}.jpg" for i in range(50)]  # each alone is fast enough; fifty are not
    with pytest.raises(LabelError, match="took longer"):
        label_files(names, r"^(a|aa)+$", budget=0.05)


def test_no_group_example_keeps_its_backslashes_in_markdown():
    with pytest.raises(LabelError) as info:
        compile_pattern(r"^\w+\.jpg$")
    assert r"`^(.+)_\d+\.jpg$`" in str(info.value)  # in backticks: st.error's markdown keeps the backslashes


def test_labels_in_any_script_are_nfc():
    """Issue 19 item 5: Chinese names label like any other; a Mac's NFD names give the same label as NFC ones."""
    files = ["猫_1.jpg", "猫_2.jpg", "chat noir_3.jpg", "cafe\u0301_4.jpg", "caf\u00e9_5.jpg"]
    result = label_files(files, PETS_PATTERN)
    assert result.classes == ["café", "chat noir", "猫"]
    assert label_files(["caf\u00e9_5.jpg"], "^(cafe\u0301)_").classes == ["café"]  # the pattern typed as NFD
    by_parent = label_by_parent(["猫/1.jpg", "cafe\u0301/2.jpg", "caf\u00e9/3.jpg"])
    assert sorted(set(by_parent.labels.values())) == ["café", "猫"]


@pytest.mark.parametrize("pattern", ["(unclosed", "no_group_\\d+", "", "(a|aa)+$"])
def test_pattern_messages_are_sentences(pattern):
    """Issue 19 item 10: the page adds "Labels are unchanged until the pattern works." after the message, which
    ran on from "e.g. `^(.+)_\\d+\\.jpg$`" without a full stop."""
    from core import i18n

    for lang, stop in (("en", "."), ("zh", "。")):
        try:
            i18n.set_language(lang)
            with pytest.raises(LabelError) as err:
                label_files(["a" * 30 + "!.jpg"], pattern, budget=0.3 if "aa" in pattern else 2.0)
            assert str(err.value).endswith(stop), (lang, str(err.value))
        finally:
            i18n.set_language("en")


# ---- bounded work before compiling (issue 18, item 1) ----------------------------------------------

ATTACKS = [
    r"((a{300}){200}){100}",
    r"((a{1000}){1000}){1000}",
    r"(((ab){30}){30}){30}(x)",
    r"(a{5000})",
    "(" + "a" * 400 + ")",
]


@pytest.mark.parametrize("pattern", ATTACKS)
def test_explosive_patterns_are_refused_before_anything_is_compiled(pattern, monkeypatch):
    """`((a{300}){200}){100}` (21 characters) compiled to 2.5 GB with the interpreter lock held; the static
    checks refuse it (and its kind) without calling the compiler at all."""
    import core.data.labels

    def no_compiling(*args, **kwargs):
        raise AssertionError("regex.compile was called on a refused pattern")

    monkeypatch.setattr(core.data.labels.regex, "compile", no_compiling)
    with pytest.raises(LabelError, match="limit is"):
        label_files(FILES, pattern)


def test_pattern_size_counts_nested_repetitions():
    from core.data.labels import MAX_PATTERN_SIZE, pattern_size

    assert pattern_size(PETS_PATTERN) < 20 and pattern_size(COURSE_V3_PATTERN) < 20
    assert pattern_size(r"((a{300}){200}){100}") > 6_000_000
    assert pattern_size(r"(?:abc){0,20}") < pattern_size(r"(?:(?:abc){0,20}){0,20}") <= MAX_PATTERN_SIZE
    assert pattern_size(r"(a|b(?=c)|(?(1)x|y))+") < 40  # branches, look-arounds and conditionals are walked
    for fine in (r"^(.+?)_\d{1,4}\.jpe?g$", r"^([A-Za-z]+(?:_[a-z]+)*)_\d+\.jpg$", r"/([^/]+)/[^/]+$"):
        assert label_files(FILES, fine, "path").labels is not None  # ordinary patterns still compile


def test_a_refused_pattern_fits_in_a_small_memory_limit(tmp_path):
    """The attack in a process capped at 1 GiB of address space: refused with a message (before the fix
    the compile alone needed 1.6 GB there: MemoryError, or the kernel's OOM killer on the server)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    script = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from core.data.labels import LabelError, label_files\n"
        "try:\n    label_files(['ok_1.jpg'], '((a{300}){200}){100}')\n"
        "except LabelError as err:\n    print('refused:', err)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("refused:"), done.stderr[-500:]


def test_compiled_patterns_stay_out_of_the_regex_modules_cache():
    """The regex module keeps up to 500 compiled patterns module-wide: never a student's (they would be kept)."""
    from regex import _main

    before = len(_main._cache)
    for n in range(20):
        compile_pattern(rf"^(.+)_\d{{{n + 1}}}\.jpg$")
    assert len(_main._cache) == before
