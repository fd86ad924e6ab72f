"""The layout rules of DESIGN §3: no import circles, no lazy imports to dodge one, small modules.

The import graph is read from the source (``ast``), so these tests see every module, imported by
a test or not.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("envs", "tapfinger")
MAX_LINES = 400


def project_modules() -> dict[str, Path]:
    """Dotted name -> file of every module in the project's packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def imported_names(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, bool]]:
    """(dotted name, imported inside a function) of every import statement in ``tree``."""
    base = module if is_package else module.rpartition(".")[0]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend((alias.name, inner) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    anchor = base.rsplit(".", child.level - 1)[0] if child.level > 1 else base
                    source = f"{anchor}.{child.module}" if child.module else anchor
                else:
                    source = child.module or ""
                found.append((source, inner))
                found.extend((f"{source}.{alias.name}", inner) for alias in child.names)
            visit(child, inner)

    visit(tree, False)
    return found


def import_graph() -> tuple[dict[str, set[str]], list[tuple[str, str]]]:
    """Module -> project modules it imports at module level; and every function-level import
    of a project module, as (importer, imported)."""
    modules = project_modules()
    graph: dict[str, set[str]] = {}
    lazy: list[tuple[str, str]] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        edges = set()
        for target, in_function in imported_names(tree, name, path.name == "__init__.py"):
            if target not in modules or target == name:
                continue
            if in_function:
                lazy.append((name, target))
            else:
                edges.add(target)
        graph[name] = edges
    return graph, lazy


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (a package importing its own submodules excepted)."""
    colour: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        colour[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt.startswith(node + "."):
                continue  # a package's __init__ importing its submodules is not a circle
            if colour.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if colour.get(nxt) is None and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        colour[node] = 2
        return None

    for node in sorted(graph):
        if colour.get(node) is None and (cycle := dfs(node)):
            return cycle
    return None


def test_find_cycle_sees_a_circle_and_ignores_a_package_importing_its_own_modules() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"p": {"p.x"}, "p.x": {"p"}}) is None
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_imported_names_resolve_relative_imports_and_see_function_level_ones() -> None:
    tree = ast.parse("from . import b\nfrom .c import d\ndef f():\n    import e.g\n")
    assert imported_names(tree, "pkg.a", False) == [
        ("pkg", False),
        ("pkg.b", False),
        ("pkg.c", False),
        ("pkg.c.d", False),
        ("e.g", True),
    ]


def test_no_import_circle_among_the_project_modules() -> None:
    graph, _ = import_graph()
    assert len(graph) > 30  # the walk found the project
    assert find_cycle(graph) is None


def test_no_function_level_import_of_a_project_module() -> None:
    """A module that must import lazily to dodge a circle is in the wrong place (DESIGN §3)."""
    _, lazy = import_graph()
    assert lazy == []


def test_envs_never_imports_tapfinger() -> None:
    graph, _ = import_graph()
    reaching = {(m, t) for m, edges in graph.items() if m.startswith("envs") for t in edges}
    assert {(m, t) for m, t in reaching if t.startswith("tapfinger")} == set()


@pytest.mark.parametrize("name", sorted(project_modules()))
def test_no_module_over_400_lines(name: str) -> None:
    lines = project_modules()[name].read_text().count("\n")
    assert lines <= MAX_LINES, f"{name}: {lines} lines"


def test_importing_envs_leaves_torch_out() -> None:
    envs_modules = [m for m in project_modules() if m.split(".")[0] == "envs"]
    code = (
        "import importlib, sys\n"
        f"for m in {envs_modules!r}: importlib.import_module(m)\n"
        "from envs import edge_cluster_v0\n"
        "env = edge_cluster_v0.parallel_env('smoke'); env.reset(seed=0)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
