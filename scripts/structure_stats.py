"""Print the library's structure: file count, largest files and functions, packages and who imports whom.

Run before and after a restructuring (issue 11's closing note):
    python scripts/structure_stats.py [SRC_DIR] > notes.md
Reads the source with `ast` only, so it imports nothing of int8kit.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

TOP = 10


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_modules(tree: ast.Module, module: str, is_package: bool, known: set[str]) -> set[str]:
    """Every int8kit module a file imports (module level or inside functions)."""
    found: set[str] = set()
    hints = {id(n) for top in ast.walk(tree) if _is_type_checking(top) for stmt in top.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in hints:
            continue  # `if TYPE_CHECKING:` imports are type hints, not dependencies
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("int8kit"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("int8kit"):
                subs = {f"{name}.{a.name}" for a in node.names} & known
                # `from pkg import submodule` depends on the submodule; other names on pkg itself.
                found.update(subs)
                if len(subs) < len(node.names):
                    found.add(name)
    return found


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else (module if len(parts) == 2 else parts[0])


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "src"
    files = sorted(src.rglob("*.py"))
    modules = {module_name(f, src): f for f in files}
    lines = {m: len(f.read_text().splitlines()) for m, f in modules.items()}
    functions: list[tuple[int, str]] = []
    imports: dict[str, set[str]] = {}
    for m, f in modules.items():
        tree = ast.parse(f.read_text(), str(f))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions.append((node.end_lineno - node.lineno + 1, f"{m}:{node.name}"))
        deps = imported_modules(tree, m, f.name == "__init__.py", set(modules))
        imports[m] = {i for i in deps if i in modules and i != m}

    print(f"# Structure of {src.name}/int8kit\n")
    print(f"- Python files: {len(files)}, lines: {sum(lines.values())}")
    print(f"- Packages: {sum(1 for f in files if f.name == '__init__.py')}\n")
    print(f"## Largest files (lines, top {TOP})\n")
    for m, n in sorted(lines.items(), key=lambda kv: -kv[1])[:TOP]:
        print(f"- {n:5d} {m}")
    print(f"\n## Largest functions (lines, top {TOP})\n")
    for n, name in sorted(functions, reverse=True)[:TOP]:
        print(f"- {n:5d} {name}")
    print("\n## Packages and who imports whom (package -> packages it imports)\n")
    graph: dict[str, set[str]] = defaultdict(set)
    for m, deps in imports.items():
        graph[package_of(m)].update(package_of(d) for d in deps if package_of(d) != package_of(m))
    for pkg in sorted(graph):
        print(f"- {pkg} -> {', '.join(sorted(graph[pkg])) or '(none)'}")
    cycles = module_cycles(imports)
    print(f"\n## Module import cycles: {len(cycles)}\n")
    for cycle in cycles:
        print("- " + " -> ".join(cycle))
    return 0


def module_cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(imports.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(imports):
        if v not in index:
            visit(v)
    return components


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
