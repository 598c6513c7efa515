"""Layering: imports point down the layers, no modules import each other in a circle, none is overlong.

Every .py under models/, pipeline/ and scrapers/ is read with `ast`, so an import counts wherever it
sits: at the top, inside a function, or under `if TYPE_CHECKING:`.
"""

from __future__ import annotations

import ast
import itertools
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("models", "pipeline", "scrapers")

# Lowest first. A module may import from its own layer and from the layers below it.
LAYERS = ("models", "foundation", "storage", "scrapers", "stages", "review", "jobs", "cli")
RANK = {layer: rank for rank, layer in enumerate(LAYERS)}

# The foundation is listed module by module: a new module at pipeline's top level must say where it
# belongs. pipeline.demo (the demo site's server) sits here, so tests and the demo can use it alone.
FOUNDATION = frozenset({"pipeline", "pipeline.config", "pipeline.dates", "pipeline.jsonl",
                        "pipeline.language", "pipeline.text", "pipeline.urls"})
LAYER_OF_PACKAGE = {
    "models": "models",
    "pipeline.demo": "foundation",
    "pipeline.storage": "storage",
    "scrapers": "scrapers",  # the Scrapy project: it hands pages to storage
    "pipeline.ingest": "stages",
    "pipeline.analysis": "stages",
    "pipeline.review": "review",
    "pipeline.jobs": "jobs",
    "pipeline.cli": "cli",
}

MAX_LINES = 600
# A module stays over MAX_LINES only when its docstring says "Long because ...".
LONG_BECAUSE = re.compile(r"(?:\A|[.!?:]\s+|\n\s*)Long because\b")


@dataclass(frozen=True)
class Import:
    importer: str
    path: str  # relative to the repo
    line: int
    statement: str
    target: str


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(path): path
            for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))}


def _known(name: str) -> str | None:
    """The module of ours that a dotted name refers to (the longest that exists), if any."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in _modules():
            return candidate
        parts.pop()
    return None


@cache
def _imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for module, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from pipeline import config` imports the module pipeline.config
                names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in _modules() else base
                         for alias in node.names]
            else:
                continue
            for target in dict.fromkeys(_known(name) for name in names):
                if target is not None and target != module:
                    found.append(Import(module, path.relative_to(REPO).as_posix(), node.lineno,
                                        ast.unparse(node), target))
    return tuple(found)


def layer_of(module: str) -> str | None:
    if module in FOUNDATION:
        return "foundation"
    for package in sorted(LAYER_OF_PACKAGE, key=len, reverse=True):
        if module == package or module.startswith(f"{package}."):
            return LAYER_OF_PACKAGE[package]
    return None


def test_every_module_has_a_layer() -> None:
    unplaced = [module for module in _modules() if layer_of(module) is None]
    assert not unplaced, f"give these modules a layer in tests/test_layers.py: {unplaced}"


def test_no_module_imports_from_a_higher_layer() -> None:
    upward = []
    for imp in _imports():
        mine, theirs = layer_of(imp.importer), layer_of(imp.target)
        if mine is None or theirs is None or RANK[theirs] <= RANK[mine]:
            continue
        allowed = ", ".join(LAYERS[:RANK[mine] + 1])
        upward.append(f"{imp.path}:{imp.line}: `{imp.statement}`: {imp.importer} ({mine}) imports "
                      f"{imp.target} ({theirs}), but {mine} may import only from {allowed}")
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the groups of modules that reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    groups.append(sorted(group))
    return groups


def _cycle_through(start: str, graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest path start -> ... -> start inside one strongly connected group."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    return [start]


def test_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {module: set() for module in _modules()}
    where: dict[tuple[str, str], Import] = {}
    for imp in _imports():
        graph[imp.importer].add(imp.target)
        where.setdefault((imp.importer, imp.target), imp)
    cycles = []
    for group in _strongly_connected(graph):
        if len(group) < 2:
            continue
        path = _cycle_through(group[0], graph, set(group))
        steps = [where[pair] for pair in itertools.pairwise(path)]
        cycles.append(f"{' -> '.join(path)}\n" + "\n".join(
            f"    {s.path}:{s.line}: `{s.statement}`" for s in steps)
            + (f"\n    (and the rest of {group})" if len(set(path)) < len(group) else ""))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_module_is_overlong_without_a_reason() -> None:
    offenders = []
    for path in _modules().values():
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines <= MAX_LINES:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if LONG_BECAUSE.search(docstring):
            continue
        name = path.relative_to(REPO).as_posix()
        offenders.append(f"{name}: {lines} lines")
    assert not offenders, (f"over {MAX_LINES} lines, and no sentence starting 'Long because' in the "
                           "module docstring says why:\n" + "\n".join(offenders))
