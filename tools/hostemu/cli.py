"""`hostemu`: run the firmware on this computer as a simulated board."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from boardkit import profiles
from hostemu import install as installer
from hostemu.serial_bridge import SerialBridge
from hostemu.supervisor import DEFAULT_NETWORKS, BoardRun


def _load_profile(board: str) -> profiles.BoardProfile:
    try:
        return profiles.load(board)
    except profiles.ProfileError as exc:
        raise click.BadParameter(str(exc), param_hint="--board") from None


def _parse_networks(values: tuple[str, ...]) -> dict[str, str]:
    networks = {}
    for value in values:
        ssid, sep, password = value.partition(":")
        if not sep or not ssid:
            raise click.BadParameter(f"{value!r}: expected SSID:PASSWORD", param_hint="--wifi")
        networks[ssid] = password
    return networks or dict(DEFAULT_NETWORKS)


@click.group()
def main() -> None:
    """The host emulation layer: MicroPython boards simulated on this computer."""


@main.command()
@click.option("--board", default="esp32", show_default=True, help="Board profile name (boards/NAME.json) or path.")
@click.option("--fs", "fs_root", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The board's filesystem: a folder that survives resets.")
@click.option("--wifi", multiple=True, metavar="SSID:PASSWORD", help="An access point in the air (default hostemu:hostemu).")
@click.option("--sync/--no-sync", default=False, help="Overwrite the board's firmware and lib with the repository's.")
@click.option("--install/--no-install", "do_install", default=True, help="Put missing firmware and lib files on the board.")
@click.option("--max-resets", type=int, default=None, help="Stop after this many resets.")
@click.option("--heap-trace/--no-heap-trace", default=True, help="Measure the Python heap for gc.mem_alloc().")
@click.option("--serial-port", type=int, default=None, metavar="PORT",
              help="Serve the board's serial console (REPL) on this TCP port: mpremote connect socket://127.0.0.1:PORT")
@click.option("--runtime", type=click.Choice(["cpython", "vm", "unix"]), default="cpython", show_default=True,
              help="cpython: fast and debuggable; vm: MicroPython 1.27's WebAssembly port (Node); "
                   "unix: MicroPython's unix port with its real socket/ssl/select, the ground truth.")
@click.option("--serial-host", default="127.0.0.1", show_default=True, help="Address the serial console listens on.")
@click.option("--mpy/--source", "compiled", default=False,
              help="Install .mpy from mpy-cross, as `boardkit deploy` does (not for the cpython runtime).")
def run(board: str, fs_root: Path, wifi: tuple[str, ...], sync: bool, do_install: bool, max_resets: int | None,
        heap_trace: bool, serial_port: int | None, runtime: str, serial_host: str, compiled: bool) -> None:
    """Boot a simulated board: boot.py, then main.py, restarting it on every reset."""
    profile = _load_profile(board)
    if compiled and runtime == "cpython":
        raise click.BadParameter("CPython cannot load .mpy: use --runtime vm or unix", param_hint="--mpy")
    if do_install:
        installer.install(fs_root, profile, overwrite=sync, compiled=compiled)
    if runtime != "cpython" and serial_port is not None:
        raise click.BadParameter("the serial console needs the cpython runtime", param_hint="--serial-port")
    serial = SerialBridge(serial_host, serial_port) if serial_port is not None else None
    if serial is not None:
        click.echo(f"hostemu: serial console on socket://{serial_host}:{serial.port}", err=True)
    board_run = BoardRun(profile, fs_root.resolve(), _parse_networks(wifi), max_resets=max_resets, heap_trace=heap_trace,
                         serial=serial, runtime=runtime)
    sys.exit(board_run.run())


@main.command()
@click.option("--board", default="esp32", show_default=True)
@click.option("--fs", "fs_root", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--sync/--no-sync", default=False)
@click.option("--mpy/--source", "compiled", default=False, help="Compiled with mpy-cross, as `boardkit deploy` lays it out.")
def install(board: str, fs_root: Path, sync: bool, compiled: bool) -> None:
    """Copy the firmware, the library and the board profile onto a board folder."""
    profile = _load_profile(board)
    for path in installer.install(fs_root, profile, overwrite=sync, compiled=compiled):
        click.echo(f"wrote {path}")


@main.command("boards")
def list_boards() -> None:
    """List the board profiles."""
    for name in profiles.available():
        profile = profiles.load(name)
        click.echo(f"{name:10} {profile.chip:8} {profile.description}")


if __name__ == "__main__":
    main()
