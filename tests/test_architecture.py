"""The seams of the code base, checked on its source (architecture issue 14): no import cycles between
modules, no module importing another's private names, the library never importing the CLI, and no
module grown past one idea's size."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("drbalance", "data_pipeline")
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _top_level_imports(path: Path, module: str, modules: dict) -> set[str]:
    """Modules of ours imported at module level (not inside functions), resolved to module names."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in tree.body:
        if isinstance(node, ast.If):   # e.g. version-dependent imports
            body = node.body + node.orelse
        elif isinstance(node, ast.Try):
            body = node.body + [n for h in node.handlers for n in h.body]
        else:
            body = [node]
        for n in body:
            if isinstance(n, ast.Import):
                names = [a.name for a in n.names]
            elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
                names = [n.module] + [f"{n.module}.{a.name}" for a in n.names]
            else:
                continue
            for name in names:
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != module:
                    found.add(name)
    return found


def test_no_import_cycles_between_modules():
    modules = _modules()
    graph = {m: _top_level_imports(p, m, modules) for m, p in modules.items()}
    # a package's __init__ re-exporting its submodules is not a cycle with them
    for m in graph:
        graph[m] = {d for d in graph[m] if not (m.startswith(d + ".") and modules[d].name == "__init__.py")}
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, f"import cycles: {cycles[:3]}"


def test_no_private_names_cross_modules_and_library_never_imports_the_cli():
    bad, cli = [], []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
                if any(a.name.startswith("_") for a in node.names) or any(
                        p.startswith("_") and not p.startswith("__") for p in node.module.split(".")):
                    bad.append(f"{module}: from {node.module} import {[a.name for a in node.names]}")
                if node.module.startswith("drbalance.commands") and not (
                        module.startswith("drbalance.commands") or module == "drbalance.cli"):
                    cli.append(module)
    assert not bad, bad
    assert not cli, f"library modules importing the CLI layer: {cli}"


def test_modules_hold_one_idea():
    big = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines (split them along their seams): {big}"


def test_exceptions_live_in_a_leaf_module():
    modules = _modules()
    assert _top_level_imports(modules["drbalance.errors"], "drbalance.errors", modules) == set()
    assert _top_level_imports(modules["drbalance.codes"], "drbalance.codes", modules) == set()
