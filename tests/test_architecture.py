"""The layout docs/architecture.md draws, checked on the code: no import cycle (lazy imports included), small
modules, a thin package root, one module that starts Encord's data jobs, and imports that run one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"prefect_encord": ROOT / "prefect_encord", "encord_sandbox": ROOT / "sandbox" / "encord_sandbox"}
MAX_LINES = 450
#: The plugin's folders, lowest first: each imports only from folders before it (docs/architecture.md).
LAYERS = ("limits", "planning", "runtime", "state", "events", "blocks", "jobs", "tasks", "flows", "cli")
#: The crossings the architecture page names: record types and the extras' message, read as plain data.
ALLOWED_UPWARD = {
    ("planning", "state"),  # a receipt and an item map, as plain records
    ("planning", "runtime"),  # the parquet extra's message
    ("state", "blocks"),  # the inventory names a bucket by its block
}


def _modules(package: str) -> dict[str, Path]:
    base = PACKAGES[package]
    found = {}
    for path in sorted(base.rglob("*.py")):
        parts = [package, *path.relative_to(base).with_suffix("").parts]
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(package: str) -> dict[str, set[str]]:
    """Module → the modules of the same package it imports, anywhere in its body (lazy imports included)."""
    modules = _modules(package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(package: str) -> None:
    assert _cycles(_imports(package)) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_over_the_size_limit(package: str) -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules(package).items()}
    assert {name: lines for name, lines in sizes.items() if lines > MAX_LINES} == {}


def test_the_plugin_root_keeps_only_its_public_face() -> None:
    root = sorted(path.name for path in PACKAGES["prefect_encord"].glob("*.py"))
    assert root == ["__init__.py", "deployment_steps.py", "limits.py", "testing.py"]


def test_one_module_starts_encord_data_jobs() -> None:
    starters = [
        name
        for name, path in _modules("prefect_encord").items()
        if "add_private_data_to_folder_start" in path.read_text()
    ]
    assert starters == ["prefect_encord.jobs.engine"]


def test_the_plugin_imports_run_one_way() -> None:
    def layer(module: str) -> str:
        return module.split(".")[1] if module.count(".") else "root"

    upward = set()
    for module, targets in _imports("prefect_encord").items():
        for target in targets:
            here, there = layer(module), layer(target)
            if here in LAYERS and there in LAYERS and LAYERS.index(there) > LAYERS.index(here):
                upward.add((here, there))
    assert upward <= ALLOWED_UPWARD, sorted(upward - ALLOWED_UPWARD)


def test_the_sandbox_never_imports_the_plugin() -> None:
    for path in _modules("encord_sandbox").values():
        tree = ast.parse(path.read_text())
        imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in imported if m.split(".")[0] == "prefect_encord"], path
