"""The layout of frugalcv.data: no import circle, no private names across modules, and every
module importable on its own."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import frugalcv.data

pytestmark = pytest.mark.unit

PACKAGE = "frugalcv.data"
FOLDER = Path(frugalcv.data.__file__).parent
# "__init__" stands for the package; a subpackage (data/mil/, ...) is one unit named by its folder
MODULES = sorted(
    [p.stem for p in FOLDER.glob("*.py")] + [p.parent.name for p in FOLDER.glob("*/__init__.py")]
)


def _files(module: str) -> list[Path]:
    if (FOLDER / module).is_dir():
        return sorted((FOLDER / module).rglob("*.py"))
    return [FOLDER / f"{module}.py"]


def _imports(module: str) -> list[tuple[str, str | None]]:
    """(target module, imported name or None) for every import of frugalcv.data in a module (every
    file of a subpackage), at any depth (imports inside functions count: they are how circles used
    to be hidden). Imports inside one subpackage target the subpackage itself."""
    found = []
    nodes = [n for f in _files(module) for n in ast.walk(ast.parse(f.read_text()))]
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    found.append((alias.name.split(".")[2], None))
        elif isinstance(node, ast.ImportFrom):
            if node.level and (FOLDER / module).is_dir():  # inside a subpackage
                base = module if node.level == 1 or not node.module else node.module.split(".")[0]
            elif node.level:  # relative: from . import x / from .x import y
                base = node.module.split(".")[0] if node.module else None
            elif node.module == PACKAGE:
                base = None
            elif node.module and node.module.startswith(PACKAGE + "."):
                base = node.module.split(".")[2]
            else:
                continue
            for alias in node.names:
                if base is not None:
                    found.append((base, alias.name))
                elif alias.name in MODULES:  # from frugalcv.data import <submodule>
                    found.append((alias.name, None))
                else:  # from frugalcv.data import <name>: runs the package's __init__
                    found.append(("__init__", alias.name))
    return found


def _graph() -> dict[str, set[str]]:
    return {m: {t for t, _ in _imports(m) if t != m} for m in MODULES}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a path [a, b, ..., a], or None when the graph is acyclic (depth-first)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_on_hand_graphs():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert _find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None  # a diamond
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"x": {"y"}, "y": {"y2"}, "y2": {"y"}}) == ["y", "y2", "y"]


def test_import_graph_is_acyclic():
    graph = _graph()
    # the parser sees the layout (a parser that finds nothing would pass trivially)
    assert {"digits", "composites", "real"} <= graph["images"]
    assert "base" in graph["digits"] and "background" in graph["composites"]
    assert "images" not in graph["real"] and "images" not in graph["segmentation"]
    assert _find_cycle(graph) is None, f"import circle: {' -> '.join(_find_cycle(graph))}"


# The modules that the split by concern produced; they use public names only.
SPLIT = {"__init__", "background", "base", "composites", "digits", "images", "real", "segmentation"}


def test_no_private_names_imported_across_modules():
    bad = []
    for module in MODULES:
        for target, name in _imports(module):
            if name and name.startswith("_") and not name.startswith("__") and target != module:
                bad.append(f"{module} imports {target}.{name}")
    assert not bad, "import the public name from the module that owns it: " + "; ".join(bad)


_IMPORT_ALONE = textwrap.dedent(
    """
    import importlib, json, os, sys, traceback, types
    import numpy, torch, torchvision  # third-party only: frugalcv is not imported yet

    import frugalcv
    folder = os.path.join(os.path.dirname(frugalcv.__file__), "data")
    results = {}
    for name in sys.argv[1:]:
        pid = os.fork()
        if pid == 0:  # the child: a fresh interpreter state for frugalcv
            try:
                if name != "__init__":
                    # an empty package, so that frugalcv/data/__init__.py does not run first
                    pkg = types.ModuleType("frugalcv.data")
                    pkg.__path__ = [folder]
                    sys.modules["frugalcv.data"] = pkg
                full = "frugalcv.data" + ("" if name == "__init__" else "." + name)
                module = importlib.import_module(full)
                missing = [n for n in getattr(module, "__all__", ()) if not hasattr(module, n)]
                if missing:
                    raise ImportError(f"__all__ names missing: {missing}")
                os._exit(0)
            except BaseException:
                traceback.print_exc()
                sys.stderr.flush()
                os._exit(1)
        results[name] = os.waitpid(pid, 0)[1]
    print(json.dumps(results))
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_every_module_imports_alone_in_a_fresh_interpreter():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALONE, *MODULES],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(status) == set(MODULES)
    failed = sorted(m for m, code in status.items() if code != 0)
    assert not failed, f"modules that fail to import alone: {failed}\n{proc.stderr}"
