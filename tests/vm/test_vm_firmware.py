"""The firmware app (firmware/ + lib/ as installed on a board) booted in MicroPython's own
interpreter by `hostemu run --runtime vm`, against the local hub."""

from __future__ import annotations


import pytest

from boardkit import provision
from hostemu.testing import BoardProcess

testing = pytest.importorskip("localhub.testing")

# The VM tier is part of make test: without Node or the VM it fails, it does not skip.
pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with testing.HubProcess(tmp_path_factory.mktemp("hub")) as h:
        yield h


@pytest.fixture
def board(hub, tmp_path, request):
    folder = tmp_path / "board"
    folder.mkdir()
    provision.write_config(folder, hub.create_device("fw-" + request.node.name[5:40].replace("_", "-")), hub.ca_pem, "hostemu", "hostemu", 1)
    with BoardProcess(folder, runtime="vm", max_resets=0) as b:
        yield b


def test_firmware_boots_in_the_vm(board):
    board.expect(r"^wifi: connected", 30)
    booted = board.expect_json("booted", 30)
    assert booted["resetCause"] == "PWRON_RESET"


def test_firmware_connects_to_the_hub_and_sends_telemetry_in_the_vm(hub, board):
    # First caught here: lib called settimeout() on the TLS socket, which MicroPython lacks.
    line = board.expect(r'hub: first connect failed.*|.*"event": "hub".*', 30).group(0)
    assert '"connected": true' in line, line
    assert hub.wait_telemetry(_device(board), 2, 30)


def _device(board):
    import json

    config = json.loads((board.fs_root / "config.json").read_text())
    return config["connection_string"].split("DeviceId=")[1].split(";")[0]
