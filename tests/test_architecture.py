"""The layering of docs/architecture.md, checked on the source: no import cycle (lazy imports
inside functions included), no module importing another's underscore names, no pandas under
core/, and executors that import nothing of the pandas layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "lmmlite"
#: Modules an executor may import (not the pandas layer).
EXECUTOR_MAY_IMPORT = {"core", "core._kernels", "exceptions", "executors"}


def _module(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(imported lmmlite module, names taken from it) for every import in ``path``."""
    mod = _module(path)
    package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            elif node.module and node.module.startswith("lmmlite"):
                target = node.module[len("lmmlite") :].lstrip(".")
            else:
                continue
            names = [a.name for a in node.names]
            for name in names:  # "from . import _kernels": a submodule
                sub = f"{target}.{name}" if target else name
                if (SRC / Path(*sub.split("."))).with_suffix(".py").exists():
                    out.append((sub, []))
            out.append((target, names))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("lmmlite."):
                    out.append((a.name[len("lmmlite.") :], []))
        # (plain "import lmmlite" imports only the lazy package)
    return out


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for m, p in modules.items():
        for target, _ in _imports(p):
            if target in modules and target != m and target != "":
                graph[m].add(target)
    return graph


def test_architecture__no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = [*path[path.index(n) :], n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_architecture__no_private_names_across_modules():
    bad = []
    for p in SRC.rglob("*.py"):
        for target, names in _imports(p):
            if target == _module(p):
                continue
            for name in names:
                sub = f"{target}.{name}" if target else name
                is_module = (SRC / Path(*sub.split("."))).with_suffix(".py").exists()
                if name.startswith("_") and not name.startswith("__") and not is_module:
                    bad.append(f"{_module(p)} imports {target}.{name}")
    assert not bad, bad


def test_architecture__core_has_no_pandas_and_executors_no_pandas_layer():
    for p in (SRC / "core").rglob("*.py"):
        text = p.read_text()
        assert "import pandas" not in text and "from pandas" not in text, p
    graph = _graph()
    for m in ("executors", "distributed"):
        assert graph[m] <= EXECUTOR_MAY_IMPORT, (m, graph[m] - EXECUTOR_MAY_IMPORT)
