"""The package's modules import each other without a cycle: read from each module's import statements,
ordered with the standard library's graphlib, which raises CycleError naming the modules of a cycle.
The top-level imports first; then every import, those inside functions too: a late import may put
off a module's cost (cli.py's commands), never hide a cycle (config.py imported skaffold late while
skaffold imported config)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "reglessbuild"


def _modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = f.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def import_graph(late: bool = False) -> dict[str, set[str]]:
    """Module -> the package's modules it imports at its top level (`late`: anywhere, in functions too)."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps: set[str] = set()
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree) if late else tree.body:
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:  # `from . import tls` needs the submodule, not the package's body
                    sub = f"{target}.{alias.name}"
                    deps.add(sub if sub in mods else target)
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("reglessbuild"):
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("reglessbuild")}
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def test_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 20 and "reglessbuild.cli" in graph
    order = list(graphlib.TopologicalSorter(graph).static_order())  # CycleError on a cycle
    assert order.index("reglessbuild.errors") < order.index("reglessbuild.cli")


# late imports allowed to close a cycle: none (builders/buildah.py imports buildah_index late, and both build
# on buildah_cli.py, which imports neither)
KNOWN_LATE: set[tuple[str, str]] = set()


def test_no_cycle_through_late_imports_either():
    graph = import_graph(late=True)
    assert "reglessbuild.skaffold" in graph["reglessbuild.config"]  # the late imports were read
    assert not any(d.startswith("reglessbuild.config") for m, ds in graph.items() if m.startswith("reglessbuild.skaffold")
                   for d in ds), "skaffold/ imports config.py: the dependency is one way, config -> skaffold -> project"
    for module, dep in KNOWN_LATE:
        graph[module].discard(dep)
    list(graphlib.TopologicalSorter(graph).static_order())  # CycleError on a cycle


def test_the_check_sees_a_cycle():
    graph = {**import_graph(), "reglessbuild.errors": {"reglessbuild.cli"}}
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        assert "reglessbuild.errors" in exc.args[1]
    else:
        raise AssertionError("a cycle went unseen")
