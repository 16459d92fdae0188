"""The freeze manifests (firmware/manifest.py, lib/manifest*.py) name exactly the device code a
deploy copies: read with the functions MicroPython's tools/manifestfile.py gives a manifest."""

from pathlib import Path

from boardkit import mpy
from boardkit.profiles import REPO_ROOT


def _frozen(manifest: Path, port_dir: Path) -> set[str]:
    """Board paths (as deployed: lib/iothub/x.py, app/x.py) of what a manifest freezes."""
    found: set[str] = set()

    def include(path: str) -> None:
        if path.startswith("$(PORT_DIR)"):
            return  # the port's own modules
        target = (manifest.parent / path).resolve()
        found.update(_frozen(target, port_dir))

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
        pass

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
