"""The library is packaged as MicroPython users expect: mip package files and freeze manifests,
with file upload as an optional part. Every module is listed, every listed file exists."""

import ast
import json
from pathlib import Path

from boardkit.profiles import REPO_ROOT

LIB = REPO_ROOT / "lib"
PARTS = {"core": ("package.json", "manifest.py"), "upload": ("upload.json", "manifest_upload.py"),
         "provision": ("provision.json", "manifest_provision.py")}


def mip_files(name: str) -> list[str]:
    data = json.loads((LIB / name).read_text())
    assert data["version"] and isinstance(data["deps"], list)
    for destination, source in data["urls"]:
        assert destination == source, "relative sources land where they are in the repository"
    return [destination for destination, _ in data["urls"]]


def manifest_files(name: str) -> list[str]:
    tree = ast.parse((LIB / name).read_text())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]
    # The core carries the package metadata; an optional part includes the core and so shares it
    # (a second metadata() call in one chain of includes stops manifestfile: test_manifests).
    assert any(call.func.id == "metadata" for call in calls) == (name == "manifest.py")
    files = []
    for call in calls:
        if call.func.id == "package":
            package = ast.literal_eval(call.args[0])
            listed = ast.literal_eval(next(kw.value for kw in call.keywords if kw.arg == "files"))
            files += [f"{package}/{f}" for f in listed]
    return files


def test_every_module_is_in_exactly_one_part_in_both_formats():
    modules = sorted(p.relative_to(LIB).as_posix() for p in (LIB / "iothub").glob("*.py"))
    mip = {part: mip_files(files[0]) for part, files in PARTS.items()}
    frozen = {part: manifest_files(files[1]) for part, files in PARTS.items()}
    assert sorted(sum(mip.values(), [])) == modules
    assert {part: sorted(f) for part, f in frozen.items()} == {part: sorted(f) for part, f in mip.items()}
    for listed in mip.values():
        for path in listed:
            assert (LIB / path).is_file()


def test_the_optional_manifests_include_the_core():
    for name in ("manifest_upload.py", "manifest_provision.py"):
        assert 'include("manifest.py")' in (LIB / name).read_text()


def test_core_modules_do_not_import_the_optional_part_at_load_time():
    core = {Path(p).stem for p in mip_files("package.json")}
    optional = {Path(p).stem for name in ("upload.json", "provision.json") for p in mip_files(name)}
    for name in core:
        tree = ast.parse((LIB / "iothub" / f"{name}.py").read_text())
        for node in tree.body:  # top level only: imports inside functions are lazy
            if isinstance(node, ast.ImportFrom) and node.module:
                imported = {node.module.split(".")[-1]} | {alias.name for alias in node.names}
                assert not imported & optional, f"iothub/{name}.py imports {imported & optional} at load time"


def test_packaging_files_do_not_go_onto_the_board():
    from boardkit.mpy import board_layout

    board_paths = {board_path for _, board_path in board_layout()}
    assert "lib/iothub/client.py" in board_paths
    assert not {p for p in board_paths if p.startswith("lib/manifest")}
