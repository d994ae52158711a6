"""ui/ has no import loops and never imports a page: read from the source (ast), function-local imports included.

A loop hidden behind a function-local import (ui/auth.py <-> ui/state.py, ui/runs.py <-> ui/requests.py before
issue 20) still makes the modules one knot; pages/ sit above ui/ and only app.py registers them.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path) -> set[str]:
    """Every module `path` imports, anywhere in it (absolute names; `from ui import x` counts as ui.x)."""
    package = module_name(path, root).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path, root)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package down
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [base])]
                )
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def graph(root: Path, package: str = "ui") -> dict[str, set[str]]:
    """package's modules -> the modules of the same package each imports."""
    paths = sorted((root / package).rglob("*.py"))
    names = {module_name(p, root) for p in paths}
    return {module_name(p, root): (imports_of(p, root) & names) - {module_name(p, root)} for p in paths}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One loop per strongly connected component with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def pages_imported(root: Path, package: str = "ui") -> list[str]:
    """'module -> pages.x' for every import of pages/ from package."""
    return sorted(
        f"{module_name(p, root)} -> {name}"
        for p in sorted((root / package).rglob("*.py"))
        for name in imports_of(p, root)
        if name == "pages" or name.startswith("pages.")
    )


def test_ui_has_no_import_loops():
    assert cycles(graph(ROOT)) == []


def test_ui_never_imports_a_page():
    assert pages_imported(ROOT) == []


def test_the_checker_finds_a_planted_loop_and_a_page_import(tmp_path):
    """The proof that the two tests above can fail: a loop behind a function-local import, and a page import."""
    (tmp_path / "ui").mkdir()
    (tmp_path / "ui" / "__init__.py").write_text("")
    (tmp_path / "ui" / "a.py").write_text("from ui.b import thing\n")
    (tmp_path / "ui" / "b.py").write_text("def thing():\n    from ui import c\n")
    (tmp_path / "ui" / "c.py").write_text("import ui.a\nfrom pages import data\n")
    (tmp_path / "ui" / "d.py").write_text("from . import a\n")  # relative, no loop
    assert cycles(graph(tmp_path)) == [["ui.a", "ui.b", "ui.c"]]
    assert pages_imported(tmp_path) == ["ui.c -> pages", "ui.c -> pages.data"]
