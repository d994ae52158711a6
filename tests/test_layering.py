"""The engine's floors hold: read every import (ast, top-level and inside functions) and check them.

`core/` never imports streamlit, ui or pages; each package of `core/` imports only its own floor and
the floors below it (FLOORS, bottom to top); and no modules import each other in a loop, not even
through a function-local import. `check_tree` is the checker; the tests below also run it on planted
violations, so the proof that it catches them stays in the suite.

ui/ is held to the same rules (UI): it may import core and streamlit, never pages/ or app.py, and its modules
import each other without a loop (before issue 20 two hid behind function-local imports: ui.auth <-> ui.state,
ui.requests <-> ui.runs). To hold another top-level package, add a Tree to TREES.
"""

from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Tree:
    """A top-level package, its floors (bottom to top; the package itself is the ground floor) and what it never imports."""

    name: str
    floors: tuple[str, ...]
    forbidden: tuple[str, ...]


CORE = Tree(
    name="core",
    floors=(
        "core",  # i18n, settings, storage, quotas, auth, codec
        "core.nets",
        "core.data",
        "core.store",
        "core.train",
        "core.inside",
        "core.predict",
        "core.teach",
        "core.prep",
    ),
    forbidden=("streamlit", "ui", "pages", "app"),
)
UI = Tree(name="ui", floors=("ui",), forbidden=("pages", "app"))
TREES = (CORE, UI)


@dataclass(frozen=True)
class Edge:
    source: str  # module that imports, e.g. core.store.runs
    target: str  # module (or package) imported, e.g. core.nets.models
    line: int
    local: bool  # inside a function or method


def module_name(path: Path, base: Path) -> str:
    """core/nets/models.py -> core.nets.models; core/nets/__init__.py -> core.nets."""
    parts = path.relative_to(base).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_of(base: Path, tree: str) -> dict[str, Path]:
    """Every module of the tree under base, by dotted name."""
    return {module_name(p, base): p for p in sorted((base / tree).rglob("*.py"))}


def imports_of(path: Path, name: str, known: set[str]) -> list[Edge]:
    """Every import in the file, at any depth; `from pkg import mod` counts as importing pkg.mod."""
    is_package = path.name == "__init__.py"
    edges: list[Edge] = []

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                edges.extend(Edge(name, alias.name, child.lineno, inside) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:  # relative: from the module's package upwards
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    package = package[: len(package) - child.level + 1]
                    origin = ".".join([*package, *([child.module] if child.module else [])])
                else:
                    origin = child.module or ""
                for alias in child.names:
                    sub = f"{origin}.{alias.name}"
                    edges.append(Edge(name, sub if sub in known else origin, child.lineno, inside))
            visit(child, inside)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), False)
    return edges


def floor_of(module: str, floors: tuple[str, ...]) -> int | None:
    """Index of the deepest floor that holds the module (core.nets.models -> core.nets), None outside the tree."""
    best = None
    for i, floor in enumerate(floors):
        if (module == floor or module.startswith(floor + ".")) and (best is None or len(floor) > len(floors[best])):
            best = i
    return best


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import loops: strongly connected components of more than one module, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan; the graphs here are small enough for recursion
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def check_tree(base: Path, tree: Tree) -> list[str]:
    """Every violation of the tree's rules under base, one line each (empty when the floors hold)."""
    modules = modules_of(base, tree.name)
    known = set(modules)
    problems: list[str] = []
    graph: dict[str, set[str]] = {m: set() for m in modules}
    packages = {m for m, p in modules.items() if p.name == "__init__.py" and m != tree.name}
    for package in sorted(packages - set(tree.floors)):
        if floor_of(package, tree.floors) == 0:  # a package directly under the tree that is no floor
            problems.append(f"{package} is not in the floors list {tree.floors}: place it there")
    for name, path in modules.items():
        here = floor_of(name, tree.floors)
        for edge in imports_of(path, name, known):
            where = f"{path.relative_to(base)}:{edge.line}{' (function-local)' if edge.local else ''}"
            top = edge.target.split(".")[0]
            if top in tree.forbidden:
                problems.append(f"{where}: {tree.name} must not import {edge.target}")
                continue
            if top != tree.name:
                continue
            target = edge.target if edge.target in known else edge.target.rsplit(".", 1)[0]
            there = floor_of(target, tree.floors)
            if here is not None and there is not None and there > here:
                problems.append(
                    f"{where}: {name} ({tree.floors[here]}) imports {edge.target} from a floor above ({tree.floors[there]})"
                )
            if target in known and target != name and not (name.startswith(target + ".") and target in packages):
                graph[name].add(target)
    for loop in cycles(graph):
        problems.append(f"import loop between {', '.join(loop)}")
    return problems


# ---- the real tree ------------------------------------------------------------------------------


@pytest.mark.parametrize("tree", TREES, ids=lambda tree: tree.name)
def test_the_tree_keeps_its_floors(tree):
    assert check_tree(ROOT, tree) == []


def test_every_floor_exists_and_says_what_it_is():
    for floor in CORE.floors[1:]:
        init = ROOT / Path(*floor.split(".")) / "__init__.py"
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init} should say in one line what it is"


def test_no_sys_path_edits():
    """The project is installed (pip install -e .) and run from its root: nothing edits sys.path."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        if any(part.startswith(".") for part in path.relative_to(ROOT).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                edited = ast.unparse(node.func.value) == "sys.path" and node.func.attr in ("insert", "append", "extend")
            elif isinstance(node, ast.Assign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                edited = any(ast.unparse(t).startswith("sys.path") for t in targets)
            else:
                continue
            if edited:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


# ---- the checker catches what it is for (planted violations) -------------------------------------


def plant(base: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return base


TOY = Tree("core", ("core", "core.low", "core.high"), ("streamlit", "ui", "pages", "app"))


def toy(tmp_path: Path, extra: dict[str, str] | None = None) -> Path:
    files = {
        "core/__init__.py": '"""toy"""\n',
        "core/base.py": "import json\n",
        "core/low/__init__.py": '"""low"""\n',
        "core/low/a.py": "from core import base\n",
        "core/high/__init__.py": '"""high"""\n',
        "core/high/b.py": "from core.low import a\nfrom core.low.a import base\n",
    }
    return plant(tmp_path, {**files, **(extra or {})})


def test_a_clean_toy_tree_passes(tmp_path):
    assert check_tree(toy(tmp_path), TOY) == []


def test_a_floor_importing_one_above_fails_even_inside_a_function(tmp_path):
    base = toy(tmp_path, {"core/low/c.py": "def f():\n    from core.high import b\n    return b\n"})
    (problem,) = check_tree(base, TOY)
    assert "core/low/c.py:2 (function-local)" in problem and "from a floor above (core.high)" in problem


def test_the_ground_floor_importing_a_package_fails(tmp_path):
    (problem,) = check_tree(toy(tmp_path, {"core/auth.py": "from core.low.a import base\n"}), TOY)
    assert "core.auth (core) imports core.low.a" in problem


def test_core_importing_streamlit_or_ui_fails(tmp_path):
    base = toy(tmp_path, {"core/low/page.py": "import streamlit as st\n\n\ndef f():\n    from ui import state\n"})
    problems = check_tree(base, TOY)
    assert len(problems) == 2
    assert "core/low/page.py:1: core must not import streamlit" in problems[0]
    assert "core/low/page.py:5 (function-local): core must not import ui" in problems[1]


def test_a_loop_fails_even_within_one_floor_and_through_a_local_import(tmp_path):
    base = toy(
        tmp_path,
        {
            "core/low/x.py": "from core.low import y\n",
            "core/low/y.py": "def f():\n    import core.low.z\n",
            "core/low/z.py": "from core.low.x import something\n",
        },
    )
    assert check_tree(base, TOY) == ["import loop between core.low.x, core.low.y, core.low.z"]


def test_a_package_missing_from_the_floors_list_fails(tmp_path):
    (problem,) = check_tree(toy(tmp_path, {"core/extra/__init__.py": '"""new"""\n'}), TOY)
    assert "core.extra is not in the floors list" in problem


def test_a_violation_planted_in_a_copy_of_the_real_core_is_caught(tmp_path):
    shutil.copytree(ROOT / "core", tmp_path / "core", ignore=shutil.ignore_patterns("__pycache__"))
    models = tmp_path / "core" / "nets" / "models.py"
    models.write_text(models.read_text() + "\n\ndef _planted():\n    from core.store.records import read_record\n")
    problems = check_tree(tmp_path, CORE)
    assert any("core.nets.models (core.nets) imports core.store.records" in p for p in problems)
    assert any(p.startswith("import loop between") and "core.nets.models" in p for p in problems)


def test_ui_importing_a_page_or_looping_through_a_local_import_fails(tmp_path):
    """ui/ under the same checker: a page import, and a loop hidden behind a function-local import."""
    base = plant(
        tmp_path,
        {
            "ui/__init__.py": "",
            "ui/state.py": "from ui.auth import identity\n",
            "ui/auth.py": "def identity():\n    from ui import tab_store\n",
            "ui/tab_store.py": "import streamlit as st\nfrom core import auth\nfrom ui.state import ACTIVE\n",
            "ui/pickers.py": "from pages import data\n",
        },
    )
    problems = check_tree(base, UI)
    assert problems == [
        "ui/pickers.py:1: ui must not import pages",
        "import loop between ui.auth, ui.state, ui.tab_store",
    ]
