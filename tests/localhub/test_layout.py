"""The local hub's layout: each layer imports only the layers below it, and no module imports
itself back through others. A newcomer reads the architecture off the folders.

    cli, testing              commands and test helpers
    server                    the composition root: wires the services, runs the listeners
    endpoints, client         MQTT and HTTPS front ends / clients of a running hub
    services                  registry, sessions, twins, methods, C2D, telemetry, jobs, uploads
    storage                   SQLite, the state folder, the CA, blob storage
    query                     the IoT Hub query language
    protocol, support         the IoT Hub dialect (pure) / process plumbing
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "tools" / "localhub"

# What each layer may import (besides itself and the package's __version__).
ALLOWED = {
    "protocol": set(),
    "support": set(),
    "query": {"protocol"},
    "storage": {"protocol", "support"},
    "services": {"protocol", "support", "query", "storage"},
    "endpoints": {"protocol", "support", "query", "storage", "services"},
    "client": {"protocol", "support", "storage"},
    "server": {"protocol", "support", "query", "storage", "services", "endpoints"},
    "cli": {"protocol", "support", "query", "storage", "services", "endpoints", "client", "server"},
    "testing": {"protocol", "support", "storage", "services", "client"},
    "__main__": {"cli"},
    "__init__": set(),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imports(path: Path) -> set[str]:
    """Modules of the package that ``path`` imports, as dotted names within it."""
    name = _module_name(path)
    package = name.split(".") if _is_package(path) and "." not in name and name != "__init__" \
        else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                prefix = base + (node.module.split(".") if node.module else [])
            elif node.module and (node.module == "localhub" or node.module.startswith("localhub.")):
                prefix = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:
                candidate = ".".join(prefix + [alias.name])
                found.add(candidate if _exists(candidate) else ".".join(prefix))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("localhub."):
                    found.add(alias.name[len("localhub."):])
    return {f for f in found if f and f != name}


def _exists(dotted: str) -> bool:
    base = PACKAGE.joinpath(*dotted.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py") if "node" not in p.parts}


def _layer(module: str) -> str:
    return module.split(".")[0]


def test_each_layer_imports_only_the_layers_below_it() -> None:
    graph = _graph()
    assert len(graph) > 40 and {_layer(m) for m in graph} == set(ALLOWED)
    wrong = [f"{module} -> {target}" for module, targets in sorted(graph.items())
             for target in sorted(targets)
             if _layer(target) not in ALLOWED[_layer(module)] | {_layer(module), "__init__"}]
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_no_module_imports_itself_back() -> None:
    graph = _graph()
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if target not in graph:
                continue
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
