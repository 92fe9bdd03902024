"""No import cycles in the library: the module import graph, read from the source with ast, is acyclic.

Every import counts, at module level or inside a function (a lazy import hides a cycle from Python's
start-up, not from the design), except those under `if TYPE_CHECKING:` (type hints only). A failure
names the modules of each cycle in order.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skipped


def import_graph() -> dict[str, set[str]]:
    """module -> the int8kit modules it imports (`from pkg import submodule` counts the submodule)."""
    files = {_module(f): f for f in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        skipped = _type_checking_nodes(tree)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, *([node.module] if node.module else [])])
                subs = {f"{base}.{a.name}" for a in node.names} & files.keys()
                deps.update(subs)
                if len(subs) < len(node.names):
                    deps.add(base)
        graph[module] = {d for d in deps if d in files and d != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search, iterative)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_real_edges():
    graph = import_graph()
    assert "int8kit.runtime.compile" in graph["int8kit.runtime.lowering"]
    assert "int8kit.ir.graph" in graph["int8kit.ir.fusion"]


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_cycles_between_packages():
    """The packages (int8kit.ir, int8kit.convert, ...) are layered too: no package imports one that imports it.

    cli.py and commands/ are one layer, the command line (`int8kit demo` runs its steps through cli.main).
    """

    def package(module: str) -> str:
        name = ".".join(module.split(".")[:2])
        return "int8kit.commands" if name == "int8kit.cli" else name

    graph: dict[str, set[str]] = {}
    for module, deps in import_graph().items():
        graph.setdefault(package(module), set()).update(package(d) for d in deps if package(d) != package(module))
    cycle = find_cycle(graph)
    assert cycle is None, "package import cycle: " + " -> ".join(cycle)
