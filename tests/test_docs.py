"""The documents keep their word: what README, CONTRIBUTING, docs/ and bench/README name exists.

Every relative link resolves (its #anchor too); every `make X` is a Makefile target and every `python -m X`
a module; every repository path, `path::test_name`, dotted `core.x.name` and `PETLAB_` variable named in
code spans is there; every setting the app reads is documented, every bench script described; the README
stays a five-minute read. A renamed module, a deleted test or a new variable fails here, not in a
teacher's hands. The checks are functions of a repository root, so the last test plants each kind of
mistake in a temporary one and sees it caught.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 150
# top-level names of the repository a code span may start a path with
REPO_DIRS = ("core", "ui", "pages", "tests", "bench", "docs", "tools", "locales", "assets", ".streamlit", ".ci")
REPO_FILES = ("app.py", "Makefile", "requirements.txt", "pyproject.toml", "babel.cfg", "README.md", "CONTRIBUTING.md")
# where the app, its tools and benches read environment variables
CODE_DIRS = ("core", "ui", "pages", "bench", "tools")
APP_DIRS = ("core", "ui", "pages")  # what a teacher can set: every PETLAB_ variable read here is documented

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INDENTED = re.compile(r"^(?: {4,}|\t)\S.*$", re.M)
SPAN = re.compile(r"`([^`]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.M)
MAKE = re.compile(r"(?:^|[\s;(&|])make\s+([A-Za-z][\w.-]*)")
PYTHON_M = re.compile(r"python[0-9.]*\s+-m\s+([A-Za-z_][\w.]*)")
PATH_TOKEN = re.compile(r"(?:^|[\s(=\"'])(\.?[\w.-]+(?:/[\w.*<>…-]*)*(?:::[\w\[\]-]+)?)")
DOTTED = re.compile(r"^((?:core|ui|bench|tests)(?:\.\w+)+)(?:\(.*\))?$", re.S)
ENV_VAR = re.compile(r"\bPETLAB_[A-Z][A-Z0-9_]*\b")


def doc_files(root: Path) -> list[Path]:
    """The documents these checks hold: the README, CONTRIBUTING, docs/*.md and bench/README.md."""
    found = [
        root / "README.md",
        root / "CONTRIBUTING.md",
        root / "bench" / "README.md",
        *sorted((root / "docs").glob("*.md")),
    ]
    return [path for path in found if path.is_file()]


def prose_and_code(text: str) -> tuple[str, list[str]]:
    """(text without its code blocks, [every code block and inline code span with its whitespace joined])."""
    blocks = FENCE.findall(text)
    prose = FENCE.sub("", text)
    blocks += INDENTED.findall(prose)
    prose_only = INDENTED.sub("", prose)
    spans = [" ".join(span.split()) for span in SPAN.findall(prose_only)]
    return prose_only, blocks + spans


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (letters of any script kept), spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every heading anchor of a Markdown file (repeated headings get -1, -2 … as on GitHub)."""
    seen: dict[str, int] = {}
    out = set()
    for _level, heading in HEADING.findall(FENCE.sub("", path.read_text())):
        base = slug(heading)
        out.add(base if base not in seen else f"{base}-{seen[base]}")
        seen[base] = seen.get(base, 0) + 1
    return frozenset(out)


def broken_links(root: Path, doc: Path) -> list[str]:
    """Relative links whose file, or #anchor in it, is not there."""
    prose, _code = prose_and_code(doc.read_text())
    problems = []
    for target in LINK.findall(prose):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: …
            continue
        file_part, _, anchor = target.partition("#")
        path = (doc.parent / file_part).resolve() if file_part else doc
        if not path.exists():
            problems.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            problems.append(f"{target}: no heading #{anchor} in {path.relative_to(root)}")
    return problems


@cache
def make_targets(root: Path) -> frozenset[str]:
    """Targets the Makefile defines (rules and .PHONY), not its variables."""
    text = (root / "Makefile").read_text()
    rules = re.findall(r"^([A-Za-z][\w.-]*(?:\s+[A-Za-z][\w.-]*)*)\s*:(?![=:])", text, re.M)
    phony = re.findall(r"^\.PHONY:(.*)$", text, re.M)
    return frozenset(name for group in rules + phony for name in group.split())


def unknown_make_targets(root: Path, doc: Path) -> list[str]:
    """`make X` in code that the Makefile does not define."""
    _prose, code = prose_and_code(doc.read_text())
    return sorted(
        {f"make {name}" for chunk in code for name in MAKE.findall(chunk)}
        - {f"make {name}" for name in make_targets(root)}
    )


def module_exists(root: Path, name: str) -> bool:
    """A repository module or package (runnable with -m), else an installed one."""
    parts = name.split(".")
    if (root / parts[0]).is_dir() or (root / f"{parts[0]}.py").is_file():
        base = root.joinpath(*parts)
        return base.with_suffix(".py").is_file() or (base / "__main__.py").is_file() or (base / "__init__.py").is_file()
    return importlib.util.find_spec(parts[0]) is not None


def unknown_modules(root: Path, doc: Path) -> list[str]:
    """`python -m X` in code whose module does not exist."""
    _prose, code = prose_and_code(doc.read_text())
    names = {name.rstrip(".") for chunk in code for name in PYTHON_M.findall(chunk)}
    return sorted(f"python -m {name}" for name in names if not module_exists(root, name))


@cache
def ignored_patterns(root: Path) -> tuple[str, ...]:
    """.gitignore's patterns: paths made at run time (screenshots, bench/out) are named without existing."""
    path = root / ".gitignore"
    lines = path.read_text().splitlines() if path.is_file() else []
    return tuple(line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#"))


def repo_paths(chunk: str) -> list[str]:
    """Repository paths in a code chunk (placeholders, globs and data-folder paths left out)."""
    found = []
    for token in PATH_TOKEN.findall(chunk):
        token = token.rstrip(".,:;")
        first = token.split("/")[0].split("::")[0]
        in_repo = first in REPO_FILES or (first in REPO_DIRS and "/" in token)
        if in_repo and not any(mark in token for mark in "<>*…"):  # placeholders and globs name no one file
            found.append(token)
    return found


@cache
def top_level_names(path: Path) -> dict[str, ast.AST]:
    """Names a module defines or imports at top level, each with its node (a class's node lists its members)."""
    names: dict[str, ast.AST] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        names[name.id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                names[(alias.asname or alias.name).split(".")[0]] = node
    return names


def class_members(node: ast.ClassDef) -> set[str]:
    members = set()
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            members.add(item.name)
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            members.add(item.target.id)
        elif isinstance(item, ast.Assign):
            members.update(t.id for t in item.targets if isinstance(t, ast.Name))
    return members


def dotted_problem(root: Path, dotted: str) -> str | None:
    """Why `core.x.name(.member)` does not resolve to a module and a name it defines, or None."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = root.joinpath(*parts[:cut])
        module = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        if module.is_file():
            break
    else:
        return f"{dotted}: no such module"
    rest = parts[cut:]
    if not rest:
        return None
    names = top_level_names(module)
    if rest[0] not in names:
        return f"{dotted}: {module.relative_to(root)} defines no {rest[0]}"
    node = names[rest[0]]
    if len(rest) > 1 and isinstance(node, ast.ClassDef) and rest[1] not in class_members(node):
        return f"{dotted}: {rest[0]} has no {rest[1]}"
    return None


def defines_test(source: str, name: str) -> bool:
    return re.search(rf"^\s*(?:async\s+)?def {re.escape(name)}\(", source, re.M) is not None


def missing_code_names(root: Path, doc: Path) -> list[str]:
    """Repository paths, tests (path::name) and dotted core/ui names in code that are not there."""
    _prose, code = prose_and_code(doc.read_text())
    ignored = ignored_patterns(root)
    problems = set()
    for chunk in code:
        for token in repo_paths(chunk):
            path, _, test = token.partition("::")
            if any(fnmatch.fnmatch(path.rstrip("/"), pattern) or path.startswith(pattern + "/") for pattern in ignored):
                continue
            if not (root / path).exists():
                problems.add(f"{path}: no such file")
            elif test and not defines_test((root / path).read_text(), test.split("[")[0]):
                problems.add(f"{token}: no such test")
        if (match := DOTTED.match(chunk)) and (problem := dotted_problem(root, match.group(1))):
            problems.add(problem)
    return sorted(problems)


def env_vars_in(root: Path, folders: tuple[str, ...], files: tuple[str, ...] = ()) -> set[str]:
    found = set()
    paths = [p for folder in folders for p in (root / folder).rglob("*") if p.suffix in (".py", ".sh")]
    for path in [*paths, *(root / name for name in files)]:
        if path.is_file():
            found.update(ENV_VAR.findall(path.read_text()))
    return found


def unknown_env_vars(root: Path, doc: Path) -> list[str]:
    """PETLAB_ variables a document names that no code reads."""
    known = env_vars_in(root, CODE_DIRS, ("app.py", "Makefile"))
    return sorted(set(ENV_VAR.findall(doc.read_text())) - known)


CHECKS = (broken_links, unknown_make_targets, unknown_modules, missing_code_names, unknown_env_vars)


@pytest.mark.parametrize("doc", doc_files(ROOT), ids=lambda p: str(p.relative_to(ROOT)))
@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__)
def test_what_a_document_names_exists(check, doc):
    assert check(ROOT, doc) == []


def test_the_documents_are_there_and_the_readme_is_a_five_minute_read():
    names = {str(p.relative_to(ROOT)) for p in doc_files(ROOT)}
    for wanted in ("README.md", "CONTRIBUTING.md", "bench/README.md", "docs/class-mode.md", "docs/before-class.md",
                   "docs/data-folder.md", "docs/fast-training.md", "docs/security.md", "docs/precision.md"):  # fmt: skip
        assert wanted in names
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines: move detail into docs/"
    assert "CONTRIBUTING.md" in (ROOT / "requirements.txt").read_text().splitlines()[0]


def test_every_setting_the_app_reads_is_documented():
    documented = set().union(*(ENV_VAR.findall(doc.read_text()) for doc in doc_files(ROOT)))
    assert sorted(env_vars_in(ROOT, APP_DIRS, ("app.py",)) - documented) == []


def test_every_make_target_and_bench_script_is_documented():
    text = "\n".join(doc.read_text() for doc in doc_files(ROOT))
    assert sorted(t for t in make_targets(ROOT) if not t.startswith(".") and f"make {t}" not in text) == []
    bench = (ROOT / "bench" / "README.md").read_text()
    scripts = [p.name for p in (ROOT / "bench").iterdir() if p.suffix in (".py", ".sh") and p.name != "__init__.py"]
    assert sorted(name for name in scripts if name not in bench) == []


def test_the_checks_catch_each_kind_of_mistake(tmp_path):
    """Plant one mistake of each kind in a small repository: each check reports it, and a clean one passes."""
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "__init__.py").write_text("")
    (tmp_path / "core" / "runs.py").write_text("class Run:\n    def load(self): ...\n\nLIMIT = 3\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_runs.py").write_text("def test_loads():\n    pass\n")
    (tmp_path / "Makefile").write_text(".PHONY: run\nSTAMP := x\nrun: $(STAMP)\n\techo\n")
    (tmp_path / "core" / "worker.py").write_text('import os\nQ = os.environ.get("PETLAB_QUEUE")\n')
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Title\n\n## Second part\n")
    good = (
        "# Read me\n\n[a](docs/a.md#second-part) · [web](https://example.org) · [here](#read-me)\n\n"
        "```bash\nmake run\n.venv/bin/python -m core.worker\n```\n\n`core/runs.py`, `tests/test_runs.py::test_loads`, "
        "`core.runs.Run.load`, `core.runs.LIMIT`, `PETLAB_QUEUE`, `runs/<run_id>/`, a data folder path `jobs/queue.db`.\n"
    )
    doc = tmp_path / "README.md"
    doc.write_text(good)
    assert [check(tmp_path, doc) for check in CHECKS] == [[], [], [], [], []]
    bad = (
        "[a](docs/b.md) [b](docs/a.md#third-part)\n\n    make lint\n\n`python -m core.prep` `core/nets/models.py` "
        "`tests/test_runs.py::test_gone` `core.runs.Run.save` `core.runs.load_run` `core.train.training` "
        "`PETLAB_TEACHER_PASSWORD`\n"
    )
    doc.write_text(bad)
    anchors.cache_clear()
    assert broken_links(tmp_path, doc) == [
        "docs/b.md: no such file",
        "docs/a.md#third-part: no heading #third-part in docs/a.md",
    ]
    assert unknown_make_targets(tmp_path, doc) == ["make lint"]
    assert unknown_modules(tmp_path, doc) == ["python -m core.prep"]
    assert missing_code_names(tmp_path, doc) == [
        "core.runs.Run.save: Run has no save",
        "core.runs.load_run: core/runs.py defines no load_run",
        "core.train.training: core/__init__.py defines no train",
        "core/nets/models.py: no such file",
        "tests/test_runs.py::test_gone: no such test",
    ]
    assert unknown_env_vars(tmp_path, doc) == ["PETLAB_TEACHER_PASSWORD"]
