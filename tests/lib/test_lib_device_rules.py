"""Static rules for the device code that mpy-cross does not enforce (STYLE and DESIGN):
no assert for run-time checks, no modules MicroPython lacks, no tuple to startswith/endswith,
no nested f-strings (miscompiled by MicroPython 1.27), no positional-only parameters."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "lib" / "iothub").glob("*.py"))
FORBIDDEN = {"hmac", "urllib", "typing", "dataclasses", "logging", "threading", "abc", "enum", "asyncio"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_device_module_follows_micropython_rules(path):
    tree = ast.parse(path.read_text())
    problems = []
    for node in ast.walk(tree):
        where = "%s:%d" % (path.name, getattr(node, "lineno", 0))
        if isinstance(node, ast.Assert):
            problems.append(where + " assert")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.split(".")[0] in FORBIDDEN:
                    problems.append(where + " imports " + name)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("startswith", "endswith") and node.args and isinstance(node.args[0], ast.Tuple):
                problems.append(where + " %s(tuple)" % node.func.attr)
        elif isinstance(node, ast.JoinedStr):
            if any(isinstance(n, ast.JoinedStr) for n in ast.walk(node) if n is not node):
                problems.append(where + " nested f-string")
        elif isinstance(node, ast.arguments) and node.posonlyargs:
            problems.append(where + " positional-only parameters")
        elif isinstance(node, ast.Match):
            problems.append(where + " match")
    assert problems == []
