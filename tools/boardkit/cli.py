"""`boardkit`: board profiles, the MicroPython gate and compiled images for boards."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from boardkit import gate, mpy, profiles


def _profile(board: str) -> profiles.BoardProfile:
    try:
        return profiles.load(board)
    except profiles.ProfileError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def main() -> None:
    """Board tooling for the MicroPython IoT Hub agent."""


@main.command("check")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
def check(paths: tuple[Path, ...]) -> None:
    """Validate every board profile and run the MicroPython gate on the device code."""
    for name in profiles.available():
        _profile(name)
    files = list(paths) or gate.device_files()
    failures = gate.check(files)
    for failure in failures:
        click.echo(str(failure), err=True)
    click.echo(f"{len(profiles.available())} board profiles valid; MicroPython gate: {len(files)} files, {len(failures)} problems")
    sys.exit(1 if failures else 0)


@main.command("mpy")
@click.option("--board", default="esp32", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Default: build/BOARD")
def compile_mpy(board: str, out: Path | None) -> None:
    """Compile lib/ and firmware/ to .mpy for a board's architecture."""
    profile = _profile(board)
    out = out or profiles.REPO_ROOT / "build" / profile.name
    results = mpy.compile_for(profile, out)
    for item in results:
        click.echo(f"{item.size:7d}  {item.board_path}")
    click.echo(f"{sum(item.size for item in results):7d}  total ({profile.mpy_arch}) in {out}")


if __name__ == "__main__":
    main()
