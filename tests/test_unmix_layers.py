"""Import structure of the unmix room: no circles, and the two cut ones stay cut.

Read from the source with `ast`, so imports inside functions (which break a circle only at
import time, not in the design) count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import unmixgen.unmix

UNMIX = Path(unmixgen.unmix.__file__).parent
#: rooms above unmix/ (DESIGN.md "Layout: one room per stage"): unmix must not import them
HIGHER = {"priors", "refine", "report", "runs", "workflows", "cli"}


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(sibling modules of unmix/ imported by ``path``, other unmixgen rooms it imports)."""
    siblings, rooms = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            parts = (node.module or "").split(".")
            if node.level == 1:  # from .x import ... / from . import x
                siblings.update([parts[0]] if node.module else [a.name for a in node.names])
            elif node.level == 2 and node.module:  # from ..room import ...
                rooms.add(parts[0])
            elif node.level == 0 and parts[0] == "unmixgen" and len(parts) > 1:
                if parts[1] == "unmix" and len(parts) > 2:
                    siblings.add(parts[2])
                else:
                    rooms.add(parts[1])
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "unmixgen" and len(parts) > 2 and parts[1] == "unmix":
                    siblings.add(parts[2])
    return siblings, rooms


GRAPH = {p.stem: _imports(p) for p in UNMIX.glob("*.py") if p.stem != "__init__"}


def _reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in GRAPH.get(todo.pop(), (set(), set()))[0]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_graph_was_read():
    assert "batched" in GRAPH["admm"][0]
    assert {"batched", "admm"} <= GRAPH["inversion"][0]


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_module_of_unmix_imports_itself_back(module):
    assert module not in _reachable(module), f"unmix.{module} is on an import circle"


def test_the_cut_circles_stay_cut():
    assert "inversion" not in _reachable("admm")
    assert not {"archetypal", "minvol"} & _reachable("preprocessing")
    assert "archetypal" not in _reachable("minvol")


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_unmix_imports_no_higher_room(module):
    assert not GRAPH[module][1] & HIGHER
