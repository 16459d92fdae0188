"""`boardkit`: board profiles, the MicroPython gate and compiled images for boards."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from boardkit import deploy as deployer
from boardkit import flash as flasher
from boardkit import gate, mpy, profiles
from boardkit import provision as provisioner
from boardkit.vendor import VendorError

console = Console(stderr=True, highlight=False)


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


@main.command("vendor")
def vendor_cmd() -> None:
    """Fetch the micropython-lib packages deployed beside the agent (umqtt.simple) into build/vendor."""
    from boardkit import vendor

    try:
        for board_path, local in vendor.fetch().items():
            click.echo(f"/lib/{board_path} <- {local}")
    except (VendorError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


@main.command("flash")
@click.option("--board", default="esp32", show_default=True)
@click.option("--port", default="", help="Serial port of the board, e.g. /dev/ttyUSB0.")
@click.option("--firmware", type=click.Path(path_type=Path), required=True, help="MicroPython image (.bin).")
@click.option("--check-only", is_flag=True, help="Check image, chip and port; do not touch the board.")
def flash_cmd(board: str, port: str, firmware: Path, check_only: bool) -> None:
    """Erase and write MicroPython at the profile's offset and baud, then verify."""
    profile = _profile(board)
    if str(firmware) in ("", "."):
        raise click.ClickException("no firmware image given (make flash FIRMWARE=ESP32_GENERIC-v1.27.0.bin PORT=/dev/ttyUSB0)")
    try:
        image = flasher.check(profile, port, firmware)
        console.print(f"{firmware}: {image.chip} image, {image.size} bytes, goes at {profile.firmware_offset:#x} on {port}")
        if not check_only:
            flasher.flash(profile, port, firmware)
    except flasher.FlashError as exc:
        raise click.ClickException(str(exc)) from None


@main.command("deploy")
@click.option("--board", default="esp32", show_default=True)
@click.option("--port", required=True, help="/dev/ttyUSB0, or socket://127.0.0.1:PORT for an emulated board.")
@click.option("--config", "config_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Folder from `boardkit provision` (config.json, ca.pem).")
@click.option("--source", is_flag=True, help="Copy .py sources instead of .mpy (the CPython host emulation runs only sources).")
@click.option("--no-reset", is_flag=True)
@click.option("--in-place/--files", "in_place", default=None,
              help="Code in the board's ROMFS partition, run from flash (default when the profile has "
                   "romfs_bytes), or as files on its filesystem.")
def deploy_cmd(board: str, port: str, config_dir: Path | None, source: bool, no_reset: bool,
               in_place: bool | None) -> None:
    """Compile and copy the library and the app to a board; only what changed is copied."""
    profile = _profile(board)
    if not port:
        raise click.ClickException("no port given (make deploy PORT=/dev/ttyUSB0, or PORT=socket://127.0.0.1:N for an emulated board)")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console) as progress:
        task = progress.add_task("surveying the board", total=None)

        def copied(board_path: str) -> None:
            progress.update(task, description=f"copied {board_path}", advance=1)

        try:
            with tempfile.TemporaryDirectory() as tmp:
                files, image = deployer.prepare(profile, Path(tmp), config_dir, compiled=not source, in_place=in_place)
                plan = deployer.plan(port, files, image)
                writing = f"writing the {image.size}-byte ROMFS image, then " if plan.write_image and image else ""
                progress.update(task, total=len(plan.changed), completed=0, description=writing + "copying")
                deployer.apply(port, plan, reset=not no_reset, on_copied=copied)
        except (deployer.DeployError, VendorError) as exc:
            raise click.ClickException(str(exc)) from None
    rom = ""
    if plan.image is not None:
        rom = (f"ROMFS image of {len(plan.image.members)} modules ({plan.image.size} bytes) "
               + ("written; " if plan.write_image else "unchanged; "))
    console.print(rom + f"{len(plan.changed)} copied, {len(plan.unchanged)} unchanged, {len(plan.stale)} stale removed"
                  + ("" if no_reset else "; board reset"))


@main.command("provision")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder for config.json and ca.pem.")
@click.option("--wifi", required=True, metavar="SSID:PASSWORD")
@click.option("--hub-state", type=click.Path(file_okay=False, path_type=Path), help="A local hub's state folder.")
@click.option("--device", "device_id", help="Device id on the local hub (created if missing).")
@click.option("--connection-string", envvar="IOTHUB_DEVICE_CONNECTION_STRING",
              help="An Azure IoT Hub device connection string (or $IOTHUB_DEVICE_CONNECTION_STRING).")
@click.option("--interval", default=10, show_default=True, type=int, help="Telemetry interval in seconds.")
def provision_cmd(out: Path, wifi: str, hub_state: Path | None, device_id: str | None, connection_string: str | None,
                  interval: int) -> None:
    """Write a board's config.json and CA for a local-hub device or an Azure IoT Hub device."""
    ssid, sep, password = wifi.partition(":")
    if not sep:
        raise click.BadParameter("expected SSID:PASSWORD", param_hint="--wifi")
    try:
        if connection_string and not hub_state:
            result = provisioner.from_azure(out, connection_string, ssid, password, interval)
        elif hub_state and device_id and not connection_string:
            result = provisioner.from_local_hub(out, hub_state, device_id, ssid, password, interval)
        else:
            raise click.UsageError("give either --hub-state with --device, or --connection-string")
    except provisioner.ProvisionError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(result.summary())


if __name__ == "__main__":
    main()
