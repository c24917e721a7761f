"""The import rules of the ``cachegrid`` package, read from the source with
``ast`` (nothing is imported to build the graph):

- no import cycle among the modules' module-level imports, and none through
  a late import (one inside a function) either, except the CLI's lazy
  ``serve``, which imports the daemon only when it runs;
- the engine imports nothing else of cachegrid;
- the client imports nothing of the engine, the daemon or the CLI, not even
  through another module;
- the CLI imports the client and the configuration (the settings, and the
  ACL file's reader ``acl_file``; and the cluster tools and the load
  generator), the daemon only inside ``serve``;
- the daemon (``cachegrid/daemon/`` and ``cachegrid/config.py``) uses the
  engine through its package face, ``cachegrid.engine``, and the modules
  that face documents (``snapshot``, ``tags``, ``pattern_delete``): never
  the store's internals or a policy module;
- the load generator knows only the HTTP contract; the cluster tools know
  nothing of the server.

An import inside ``if TYPE_CHECKING:`` counts as a late one: it costs
nothing at run time, but it still says that one module needs the other.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cachegrid
import cachegrid.loadgen

ROOT = Path(cachegrid.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


@dataclass(frozen=True)
class Import:
    """One import of a module of the package by another."""

    module: str  # the importing module
    target: str  # the module of the package it imports
    at_top: bool  # a module-level statement (not inside a function, class body or `if`)
    line: int

    def __str__(self) -> str:
        path = MODULES[self.module].relative_to(ROOT.parent)
        return f"{path}:{self.line}: {self.module} imports {self.target}"


def imports(name: str) -> list[Import]:
    """The modules of the package that module ``name`` imports, each import
    statement's targets once."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    found: list[Import] = []
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
                found.append(Import(name, target, id(node) in top_level, node.lineno))
    return list(dict.fromkeys(found))


IMPORTS = {name: imports(name) for name in MODULES}
GRAPH = {name: sorted({edge.target for edge in edges}) for name, edges in IMPORTS.items()}
MODULE_LEVEL_GRAPH = {name: sorted({edge.target for edge in edges if edge.at_top}) for name, edges in IMPORTS.items()}
# The one late import allowed to break a cycle: `cachegrid serve` loads the
# daemon (gunicorn, falcon) only when it runs, so the other commands start fast.
LAZY_SERVE = "cachegrid.cli.serve"

# The engine as the daemon may see it: the package's face and the three
# modules that are part of it (the snapshot format, tags, the pattern delete).
ENGINE_FACE = frozenset(
    {"cachegrid.engine", "cachegrid.engine.snapshot", "cachegrid.engine.tags", "cachegrid.engine.pattern_delete"}
)


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


def reachable(start: str, graph: dict[str, list[str]]) -> set[str]:
    """Every module that importing ``start`` may import, itself excluded."""
    seen: set[str] = set()
    pending = list(graph[start])
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(graph[name])
    return seen - {start}


def in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def daemon_imports_past_the_engine_face() -> list[Import]:
    return [
        edge
        for name, edges in IMPORTS.items()
        if in_package(name, "cachegrid.daemon") or name == "cachegrid.config"
        for edge in edges
        if in_package(edge.target, "cachegrid.engine") and edge.target not in ENGINE_FACE
    ]


# -- the reader ------------------------------------------------------------------


def test_the_graph_sees_the_imports() -> None:
    # The reader itself: relative, absolute, package and late imports are edges.
    assert "cachegrid.cli.status" in GRAPH["cachegrid.cli.common"]
    assert "cachegrid.cli.serve" in GRAPH["cachegrid.cli.main"]
    assert "cachegrid.loadgen" in GRAPH["cachegrid.cli.loadtest"]
    assert "cachegrid.daemon.server" in GRAPH["cachegrid.cli.serve"]
    assert "cachegrid.daemon.server" not in MODULE_LEVEL_GRAPH["cachegrid.cli.serve"]  # imported when it runs
    assert "cachegrid.percentile" in GRAPH["cachegrid.loadgen.results"]
    assert "cachegrid.engine.snapshot" in GRAPH["cachegrid.daemon.app"]
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert reachable("d", {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == {"a", "b", "c"}


# -- no cycle ----------------------------------------------------------------------


def test_no_import_cycle_at_module_level() -> None:
    assert cycles(MODULE_LEVEL_GRAPH) == []


def test_no_late_import_breaks_a_cycle_but_the_lazy_serve() -> None:
    # A cycle through a late import is still two modules that each need the
    # other; only `cachegrid serve`'s late imports are left out of the graph.
    graph = {
        name: sorted({edge.target for edge in edges if edge.at_top or name != LAZY_SERVE})
        for name, edges in IMPORTS.items()
    }
    assert cycles(graph) == []


def test_nothing_imports_the_cli_entry_module_back() -> None:
    assert [name for name, targets in GRAPH.items() if "cachegrid.cli.main" in targets] == ["cachegrid.cli"]


# -- the layers ----------------------------------------------------------------------


def test_the_engine_imports_nothing_else_of_cachegrid() -> None:
    outside = [
        str(edge)
        for name, edges in IMPORTS.items()
        if in_package(name, "cachegrid.engine")
        for edge in edges
        if not in_package(edge.target, "cachegrid.engine")
    ]
    assert outside == [], "\n".join(outside)


def test_the_client_loads_nothing_of_the_engine_daemon_or_cli() -> None:
    server_side = ("cachegrid.engine", "cachegrid.daemon", "cachegrid.cli")
    for name in MODULES:
        if in_package(name, "cachegrid.client"):
            loaded = reachable(name, GRAPH)
            assert not [target for target in loaded if any(in_package(target, side) for side in server_side)], (
                name,
                sorted(loaded),
            )


def test_the_cli_imports_the_daemon_only_inside_serve() -> None:
    allowed = (
        "cachegrid.cli",
        "cachegrid.client",
        "cachegrid.cluster",
        "cachegrid.config",
        "cachegrid.acl_file",
        "cachegrid.loadgen",
    )
    for name in MODULES:
        if not name.startswith("cachegrid.cli"):
            continue
        for edge in IMPORTS[name]:
            if edge.target.startswith("cachegrid.daemon"):
                assert name == LAZY_SERVE and not edge.at_top, str(edge)
            else:
                assert edge.target == "cachegrid" or edge.target.startswith(allowed), str(edge)


def test_the_daemon_uses_the_engine_through_its_face_only() -> None:
    past = [str(edge) for edge in daemon_imports_past_the_engine_face()]
    assert past == [], "the daemon imports engine modules past its face:\n" + "\n".join(past)


def test_the_load_generator_knows_only_the_http_contract() -> None:
    for name in MODULES:
        if name.startswith("cachegrid.loadgen"):
            outside = [target for target in GRAPH[name] if not target.startswith("cachegrid.loadgen")]
            assert set(outside) <= {"cachegrid.percentile"}, (name, outside)


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
