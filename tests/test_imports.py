"""The package's import graph: every module imports in a fresh interpreter, and nothing cycles.

The static check reads every ``import``/``from … import`` of ``finappd`` that runs:
at module level and inside functions (a late import that dodges a cycle at import time
is still a cycle), ``if TYPE_CHECKING:`` blocks excluded. The graph must be acyclic, so
a cycle is caught whichever module is imported first. Imports *of* the root package
(``from finappd import __version__``) are left out: it is every module's parent, run
before any of them, and imports nothing of finappd itself at module level (checked).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import finappd

#: ``python -m finappd`` runs the CLI when imported.
NOT_IMPORTABLE = {"finappd.__main__"}


def module_names() -> list[str]:
    """Every module of the finappd package, without importing it (walk order)."""
    names = ["finappd"]
    root = Path(finappd.__file__).parent

    def walk(path: Path, prefix: str) -> None:
        for info in pkgutil.iter_modules([str(path)], prefix):
            names.append(info.name)
            if info.ispkg:
                walk(path / info.name.rsplit(".", 1)[1], f"{info.name}.")

    walk(root, "finappd.")
    return [n for n in names if n not in NOT_IMPORTABLE]


def _source(name: str) -> str:
    spec = importlib.util.find_spec(name)
    assert spec is not None, name
    assert spec.origin is not None, name
    return Path(spec.origin).read_text(encoding="utf-8")


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """Import statements that can run: anywhere but in an ``if TYPE_CHECKING:`` block."""

    def __init__(self, *, late: bool) -> None:
        self.late = late
        self.found: list[ast.Import | ast.ImportFrom] = []

    def visit_If(self, node: ast.If) -> None:
        for child in node.orelse if _is_type_checking(node) else [*node.body, *node.orelse]:
            self.visit(child)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if self.late:
            self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        self.found.append(node)

    visit_ImportFrom = visit_Import


def imports_of(name: str, known: set[str], *, late: bool = True) -> set[str]:
    """The finappd modules ``name`` imports (``from pkg import mod`` → mod); ``late=False``:
    leaving out the imports inside functions."""
    origin = importlib.util.find_spec(name).origin  # type: ignore[union-attr]
    package = name if Path(origin or "").name == "__init__.py" else name.rpartition(".")[0]
    visitor = _Imports(late=late)
    visitor.visit(ast.parse(_source(name)))
    out: set[str] = set()
    for node in visitor.found:
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names if alias.name in known)
            continue
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            anchor = ".".join(parts[: len(parts) - node.level + 1])
            base = f"{anchor}.{base}" if base else anchor
        for alias in node.names:
            target = f"{base}.{alias.name}"
            if target in known:
                out.add(target)
            elif base in known:
                out.add(base)
    out.discard(name)
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that returns to its start, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one_and_only_one() -> None:
    """The cycle finder reports a 3-cycle as a closed path and an acyclic graph as None."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_static_import_graph_has_no_cycle() -> None:
    """No chain of imports inside finappd, late ones included, leads back to where it started."""
    names = module_names()
    known = set(names)
    assert imports_of("finappd", known, late=False) == set()
    graph = {name: imports_of(name, known) - {"finappd"} for name in names}
    assert graph["finappd.runtime"] >= {"finappd.flows", "finappd.providers"}  # it reads imports
    assert "finappd.runtime" in graph["finappd.flows.gaps"]  # late imports count
    assert find_cycle(graph) is None


#: The layers above the configuration: it may import none of them, even through another.
ABOVE_CONFIG = (
    "finappd.providers",
    "finappd.flows",
    "finappd.store",
    "finappd.sim",
    "finappd.runtime",
    "finappd.scheduler",
    "finappd.validate",
    "finappd.status",
    "finappd.cli",
)


def test_config_is_a_leaf() -> None:
    """Nothing finappd.config imports, directly or not, is a layer above it."""
    names = module_names()
    known = set(names)
    todo = [n for n in names if n.startswith("finappd.config")]
    reached: set[str] = set()
    while todo:
        name = todo.pop()
        for target in imports_of(name, known) - {"finappd"} - reached:
            reached.add(target)
            todo.append(target)
    assert "finappd.calendar" in reached  # it does read imports
    assert sorted(m for m in reached if m.startswith(ABOVE_CONFIG)) == []


def test_every_module_imports_in_a_fresh_interpreter() -> None:
    """Importing every module, in walk order, in a new interpreter raises nothing."""
    names = module_names()
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    env = {**os.environ, "PYTHONPATH": str(Path(finappd.__file__).parent.parent)}
    proc = subprocess.run(
        [sys.executable, "-c", script, *names],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
