"""The import graph of the whole ``cachegrid`` package, read from the source
with ``ast`` (nothing is imported to build it): no cycle anywhere, and the
directions of STYLE.md for the command line and the load generator.

Every import counts, the ones inside functions included: a cycle through a
late import is still two modules that each need the other.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import cachegrid
import cachegrid.loadgen

ROOT = Path(cachegrid.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def imports(name: str) -> list[tuple[str, bool]]:
    """The modules of the package ``name`` imports: (module, at module level)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from package import module` imports the module; `from module import name` the module.
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # `import a.b.c` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.append((target, id(node) in top_level))
    return found


GRAPH = {name: sorted({target for target, _ in imports(name)}) for name in MODULES}


def cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_imports() -> None:
    # The reader itself: relative, absolute, package and late imports are edges.
    assert "cachegrid.cli.status" in GRAPH["cachegrid.cli.common"]
    assert "cachegrid.cli.serve" in GRAPH["cachegrid.cli.main"]
    assert "cachegrid.loadgen" in GRAPH["cachegrid.cli.loadtest"]
    assert "cachegrid.daemon.server" in GRAPH["cachegrid.cli.serve"]
    assert "cachegrid.percentile" in GRAPH["cachegrid.loadgen.results"]
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]


def test_no_import_cycle_in_the_package() -> None:
    assert cycles(GRAPH) == []


def test_nothing_imports_the_cli_entry_module_back() -> None:
    assert [name for name, targets in GRAPH.items() if "cachegrid.cli.main" in targets] == ["cachegrid.cli"]


def test_the_load_generator_knows_only_the_http_contract() -> None:
    for name in MODULES:
        if name.startswith("cachegrid.loadgen"):
            outside = [target for target in GRAPH[name] if not target.startswith("cachegrid.loadgen")]
            assert set(outside) <= {"cachegrid.percentile"}, (name, outside)


def test_the_cli_imports_the_daemon_only_inside_serve() -> None:
    allowed = ("cachegrid.cli", "cachegrid.client", "cachegrid.cluster", "cachegrid.config", "cachegrid.loadgen")
    for name in MODULES:
        if not name.startswith("cachegrid.cli"):
            continue
        for target, at_top in imports(name):
            if target.startswith("cachegrid.daemon"):
                assert name == "cachegrid.cli.serve" and not at_top, (name, target)
            else:
                assert target == "cachegrid" or target.startswith(allowed), (name, target)


def test_the_load_generator_lives_outside_the_cli() -> None:
    assert importlib.util.find_spec("cachegrid.cli.loadgen") is None
    assert not any(name.startswith("cachegrid.cli.") and "loadgen" in name for name in MODULES)
    assert Path(cachegrid.loadgen.__file__).parent == ROOT / "loadgen"


def test_the_cluster_tools_import_nothing_of_the_server() -> None:
    # cachegrid.cluster (the nginx configuration) sits beside the nodes: it
    # may use the client's contract, never the daemon or the engine.
    for name in MODULES:
        if name.startswith("cachegrid.cluster"):
            outside = [
                target for target in GRAPH[name] if not target.startswith(("cachegrid.cluster", "cachegrid.client"))
            ]
            assert outside == [], (name, outside)
