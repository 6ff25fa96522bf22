"""Imports flow one way (../shared/ARCHITECTURE.md, issue 14 part 1): a module imports only from floors below
its own, lazy imports inside functions included, and no two modules import each other (directly or around a
loop). Pure static analysis with `ast` over src/groklab: nothing here imports the package or torch."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "groklab"

# Bottom to top. Two modules on the same floor may import each other's names (no cycles, though).
FLOORS: list[tuple[str, ...]] = [
    ("groklab.errors", "groklab.version"),
    ("groklab.config", "groklab.catalog", "groklab.conditions"),
    ("groklab.tasks", "groklab.models"),
    ("groklab.store",),
    ("groklab.train",),
    ("groklab.sweep", "groklab.analysis", "groklab.interop"),
    ("groklab.report",),
    ("groklab.presets",),
    ("groklab.cli", "groklab.cli_commands"),
    # The package facade re-exports from below (lazily where torch is involved); nothing inside imports it.
    ("groklab",),
]

# Known debt, each with the reason it is not fixed yet. An entry that no longer occurs fails the test, so the
# list only shrinks. Keys: (importing module, imported module).
ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    ("groklab.config", "groklab.tasks.meta"): "issue 14.1: config validates against the task tables; the checks "
    "belong with each task group (config knows field types and ranges)",
    ("groklab.config", "groklab.tasks.registry"): "issue 14.1: as tasks.meta",
}
# A cycle is allowed when it runs through the hub module and stays inside the package: (hub, package) → reason.
ALLOWED_CYCLES: dict[tuple[str, str], str] = {}


def floor_of(module: str) -> int:
    best, best_len = None, -1
    for i, prefixes in enumerate(FLOORS):
        for p in prefixes:
            # the facade "groklab" is its own floor; every other prefix covers its subpackage
            if (module == p or (p != "groklab" and module.startswith(p + "."))) and len(p) > best_len:
                best, best_len = i, len(p)
    assert best is not None, f"{module} is on no floor: add it to FLOORS in {__file__}"
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every groklab module `name` imports, at top level or inside a function, resolved to the deepest module
    that exists (`from groklab.train import hooks` → groklab.train.hooks)."""
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def import_graph() -> dict[str, set[str]]:
    mods = all_modules()
    known = set(mods)
    return {m: imports_of(m, p, known) for m, p in mods.items()}


def upward_imports(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(m, t) for m, ts in graph.items() for t in ts if floor_of(t) > floor_of(m)}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_is_on_a_floor():
    for m in all_modules():
        floor_of(m)


def test_imports_only_go_down():
    bad = upward_imports(import_graph())
    new = sorted(bad - set(ALLOWED_UPWARD))
    assert not new, "imports from a higher floor (ARCHITECTURE.md):\n" + "\n".join(f"  {a} -> {b}" for a, b in new)
    stale = sorted(set(ALLOWED_UPWARD) - bad)
    assert not stale, f"fixed, remove from ALLOWED_UPWARD: {stale}"


def allowed_cycle(cycle: frozenset[str]) -> tuple[str, str] | None:
    for hub, pkg in ALLOWED_CYCLES:
        if hub in cycle and all(m.startswith(pkg + ".") for m in cycle):
            return hub, pkg
    return None


def test_no_import_cycles():
    found = cycles(import_graph())
    new = [sorted(c) for c in found if allowed_cycle(c) is None]
    assert not new, f"import cycles: {new}"
    stale = set(ALLOWED_CYCLES) - {allowed_cycle(c) for c in found}
    assert not stale, f"fixed, remove from ALLOWED_CYCLES: {sorted(stale)}"


def test_no_private_names_cross_modules():
    """What one module shares with another is public (issue 14.3): no `from groklab.x import _name`, and no
    `alias._name` on an imported groklab module."""
    bad = []
    for name, path in all_modules().items():
        tree = ast.parse(path.read_text())
        aliases = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("groklab"):
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        bad.append(f"{name}: from {node.module} import {a.name}")
                    aliases.add(a.asname or a.name)
            elif isinstance(node, ast.Import):
                aliases |= {a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("groklab")}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                bad.append(f"{name}: {node.value.id}.{node.attr}")
    assert not bad, bad


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    pkg = tmp_path / "groklab"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "sub" / "__init__.py").write_text("from . import low\n")
    (pkg / "sub" / "low.py").write_text("def f():\n    from groklab.sub import high\n")
    (pkg / "sub" / "high.py").write_text("import groklab.sub.low as x\n")
    known = {"groklab.sub", "groklab.sub.low", "groklab.sub.high"}
    assert imports_of("groklab.sub", pkg / "sub" / "__init__.py", known) == {"groklab.sub.low"}
    assert imports_of("groklab.sub.low", pkg / "sub" / "low.py", known) == {"groklab.sub.high"}
    graph = {m: imports_of(m, pkg / (m.replace("groklab.", "").replace(".", "/") + ".py"), known)
             for m in ("groklab.sub.low", "groklab.sub.high")}
    assert cycles(graph) == [frozenset({"groklab.sub.low", "groklab.sub.high"})]
