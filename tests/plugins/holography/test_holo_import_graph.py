"""The holography plug-in's modules form no import cycle, counting imports inside functions too (a `from . import x`
depends on the package's __init__, which imports cli, which imports the rest)."""

from __future__ import annotations

from tests.import_graph import import_cycles, import_graph

NAME = "plugins.holography"


def test_no_module_of_the_plugin_imports_itself_back():
    graph = import_graph(NAME)
    assert {f"{NAME}.cli", f"{NAME}.throughput", NAME} <= set(graph)
    cycles = import_cycles(graph)
    assert cycles == [], f"modules on an import cycle: {cycles}"
