"""Students' names: cleaned, capped, never trusted, escaped where shown; numbers for the unnamed, kept."""

import pytest

from core.auth import STUDENT, TEACHER, Identity
from core.teach import roster

ALICE = Identity(STUDENT, "a" * 24)
BOB = Identity(STUDENT, "b" * 24)


def test_names_are_cleaned_and_capped():
    assert roster.clean_name("  Ada\n\tLovelace \u200b ") == "Ada Lovelace"
    assert roster.clean_name("x" * 500) == "x" * roster.MAX_NAME
    assert roster.clean_name("e\u0301cole") == "\u00e9cole"  # NFC: one way to write each letter
    assert roster.clean_name("\x00\x1b[31m") == "[31m"  # no control characters
    assert roster.clean_name(None) == "" and roster.clean_name(42) == ""
    assert roster.clean_name("小明") == "小明"


def test_markdown_safe_shows_a_name_literally():
    hostile = "**Teacher** [click](http://x) :red[alarm] $x$ `code` <b>"
    escaped = roster.markdown_safe(hostile)
    assert all(f"\\{c}" in escaped for c in "*[]():$`<>")
    assert roster.markdown_safe("小明 Ada") == "小明 Ada"


def test_students_get_numbers_in_order_and_keep_them(tmp_path):
    assert roster.label_of(tmp_path, BOB.tab) == "Student 1"  # first seen by the teacher's page
    assert roster.label_of(tmp_path, ALICE.tab) == "Student 2"
    assert roster.set_name(tmp_path, ALICE, "  Ada  ") == "Ada"
    assert roster.label_of(tmp_path, ALICE.tab) == "Ada (2)"  # the number stays with the name
    roster.set_name(tmp_path, BOB, "Ada")  # the same name twice: the numbers tell them apart
    assert roster.label_of(tmp_path, BOB.tab) == "Ada (1)"
    roster.set_name(tmp_path, BOB, "")
    assert roster.label_of(tmp_path, BOB.tab) == "Student 1"


def test_the_teacher_has_no_name_and_tokens_are_checked(tmp_path):
    with pytest.raises(ValueError):
        roster.set_name(tmp_path, Identity(TEACHER, "c" * 24), "Teacher")
    assert roster.label_of(tmp_path, "../../etc") == "a student"  # never a path
    assert not (tmp_path.parent / "etc").exists()
