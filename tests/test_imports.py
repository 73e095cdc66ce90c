"""The modules of nas_eval/ import each other without a cycle (issue 18).

The graph is read from the source with ``ast``, not by importing: every ``import`` and
``from ... import`` at any depth (module level, inside functions, under ``if``) counts, with
relative imports resolved, and ``from pkg import name`` counted as an import of the submodule
``pkg.name`` when that is a module. A lazy import inside a function still makes a cycle: it
is how a layer reaches back up, which docs/design.md §13 forbids.
"""
import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "nas_eval"


def _modules():
    """{dotted name: path} of every module of the package."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name, path, modules):
    """The package modules that module ``name`` imports."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module
            targets = [f"{stem}.{a.name}" for a in node.names] + [stem]
        else:
            continue
        for t in targets:
            while t and t not in modules:  # `import a.b.c` imports a.b.c; `from a import f`: a
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


@functools.lru_cache(maxsize=1)
def import_graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def cycles(graph):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def _edge_path(graph, comp):
    """One cycle through a component, as text (for the failure message)."""
    start = comp[0]
    seen, path = {start}, [start]
    while True:
        nxt = sorted(w for w in graph[path[-1]] if w in comp)
        back = [w for w in nxt if w == start]
        if back and len(path) > 1:
            return " -> ".join(path + [start])
        fresh = [w for w in nxt if w not in seen]
        if not fresh:
            return ", ".join(comp)
        seen.add(fresh[0])
        path.append(fresh[0])


def test_graph_sees_imports_at_any_depth():
    graph = import_graph()
    assert "nas_eval.metrics" in graph and "nas_eval.engine.native" in graph
    # report imports metrics at module level; the study loads the engine only inside functions
    assert "nas_eval.metrics" in graph["nas_eval.report"] or "nas_eval.results" in graph["nas_eval.report"]
    assert any(m.startswith("nas_eval.engine") for m in graph["nas_eval.jobkinds"])


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(_edge_path(graph, c) for c in found)


# docs/design.md §13: the pure-Python foundation every layer may import, and the analysis layer
FOUNDATION = ["space", "config", "presets", "datasets", "rng", "summaries", "_progress", "_source_tree", "_moved",
              "_validate"]
ANALYSIS = ["metrics", "stats", "evidence", "report", "results", "render", "plots", "sharing", "search_phase",
            "reliability", "reference", "external"]


def _reach(graph, name):
    reach, todo = set(), [name]
    while todo:
        for w in graph[todo.pop()]:
            if w not in reach:
                reach.add(w)
                todo.append(w)
    return reach


@pytest.mark.parametrize("module", FOUNDATION + ANALYSIS)
def test_foundation_and_analysis_never_reach_the_engine(module):
    """They work without the C core: no import, at any depth, leads to the engine."""
    reach = _reach(import_graph(), f"nas_eval.{module}")
    assert not {m for m in reach if m.startswith("nas_eval.engine")}


def test_engine_imports_only_itself_and_the_foundation():
    """The engine never imports orchestration or analysis (its deprecated aliases resolve the
    moved names through importlib when asked, which this graph of import statements ignores)."""
    graph = import_graph()
    allowed = {"nas_eval"} | {f"nas_eval.{m}" for m in FOUNDATION}
    for name, deps in graph.items():
        if name.startswith("nas_eval.engine"):
            bad = {d for d in deps if not d.startswith("nas_eval.engine") and d not in allowed}
            assert not bad, f"{name} imports {sorted(bad)}"
