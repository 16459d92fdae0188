"""The freeze manifests (firmware/manifest.py, lib/manifest*.py) name exactly the device code a
deploy copies: read with the functions MicroPython's tools/manifestfile.py gives a manifest."""

from pathlib import Path

import pytest

from boardkit import mpy
from boardkit.profiles import REPO_ROOT


class _Chain:
    """What MicroPython's tools/manifestfile.py keeps across one chain of include()s: the
    manifests already read (read once) and whether metadata() was called: an include() shares the
    includer's metadata (only require() starts a package of its own), so a second call anywhere
    in the chain is its error "Duplicate call to metadata()"."""

    def __init__(self) -> None:
        self.visited: set[Path] = set()
        self.metadata_by: Path | None = None


def _frozen(manifest: Path, port_dir: Path, chain: _Chain | None = None) -> set[str]:
    """Board paths (as deployed: lib/iothub/x.py, app/x.py) of what a manifest freezes."""
    found: set[str] = set()
    chain = chain or _Chain()
    chain.visited.add(manifest.resolve())

    def include(path: str) -> None:
        if path.startswith("$(PORT_DIR)"):
            return  # the port's own modules
        target = (manifest.parent / path).resolve()
        if target not in chain.visited:
            found.update(_frozen(target, port_dir, chain))

    def package(name: str, files: tuple[str, ...] | None = None, base_path: str = ".", opt: int | None = None) -> None:
        root = (manifest.parent / base_path).resolve()
        names = files or [p.relative_to(root / name).as_posix() for p in sorted((root / name).rglob("*.py"))]
        for file in names:
            assert (root / name / file).is_file(), f"{manifest}: {name}/{file} does not exist"
            found.add(_board_path(root / name / file))

    def module(name: str, base_path: str = ".", opt: int | None = None) -> None:
        path = (manifest.parent / base_path / name).resolve()
        assert path.is_file(), f"{manifest}: {name} does not exist"
        found.add(_board_path(path))

    def metadata(**kwargs: object) -> None:
        assert chain.metadata_by is None, \
            f"{manifest}: Duplicate call to metadata() (first in {chain.metadata_by}), which manifestfile refuses"
        chain.metadata_by = manifest

    exec(compile(manifest.read_text(), str(manifest), "exec"),
         {"include": include, "package": package, "module": module, "metadata": metadata})
    return found


def _board_path(path: Path) -> str:
    relative = path.relative_to(REPO_ROOT).as_posix()
    return relative[len("firmware/"):] if relative.startswith("firmware/") else relative


def test_the_firmware_manifest_freezes_every_module_a_deploy_copies_but_boot_and_main():
    deployed = {board for _, board in mpy.board_layout()} - set(mpy.KEEP_AS_SOURCE)
    assert _frozen(REPO_ROOT / "firmware" / "manifest.py", REPO_ROOT) == deployed


def test_the_library_manifests_split_core_and_upload():
    core = _frozen(REPO_ROOT / "lib" / "manifest.py", REPO_ROOT)
    full = _frozen(REPO_ROOT / "lib" / "manifest_upload.py", REPO_ROOT)
    assert {"lib/iothub/client.py", "lib/iothub/mqtt.py", "lib/iothub/sas.py"} <= core
    assert full - core == {"lib/iothub/blocks.py", "lib/iothub/http.py", "lib/iothub/upload.py"}


def test_a_second_metadata_call_in_one_chain_of_includes_is_refused_as_manifestfile_does(tmp_path):
    # The optional parts once called metadata() before including manifest.py, which calls it too:
    # MicroPython's manifestfile stops a firmware build there, so the reading here must as well.
    (tmp_path / "core.py").write_text('metadata(version="1")\n')
    (tmp_path / "part.py").write_text('metadata(version="1")\ninclude("core.py")\n')
    with pytest.raises(AssertionError, match="Duplicate call to metadata"):
        _frozen(tmp_path / "part.py", tmp_path)
    (tmp_path / "part.py").write_text('include("core.py")\ninclude("core.py")\n')  # read once
    assert _frozen(tmp_path / "part.py", tmp_path) == set()
