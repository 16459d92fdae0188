"""Fixtures for the end-to-end scenarios: the device library as device code in a simulated board
process (`hostemu.testing.BoardProcess`) against a real local hub (`localhub.testing.HubProcess`)
over TLS, the hub's CA checked. Boards print JSON events; the tests assert on what the hub saw.

The runtime comes from the `board_runtime` fixture: the CPython emulation here (tests/e2e), the
real MicroPython unix port in tests/unix, which runs the same scenarios with these fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterator

import pytest

from hostemu.testing import BoardProcess
from localhub.testing import HubProcess

HERE = Path(__file__).resolve().parent
DEVICE_HELPERS = (HERE / "e2e_dev.py").read_text()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    with HubProcess(tmp_path_factory.mktemp("hub")) as proc:
        yield proc


def board_files(hub: HubProcess, connection_string: str, extra: dict | None = None) -> dict[str, str | bytes]:
    """What provisioning puts on a board: config.json, the hub's CA, the test's device helpers."""
    files: dict[str, str | bytes] = {
        "config.json": json.dumps({"connection_string": connection_string, "mqtt_port": hub.mqtt_port,
                                   "ca_file": "ca.der", **(extra or {})}),
        "ca.der": hub.ca_der,
        "e2e_dev.py": DEVICE_HELPERS,
    }
    return files


@pytest.fixture
def make_board(hub: HubProcess, tmp_path: Path, board_runtime: str) -> Iterator[Callable[..., BoardProcess]]:
    """`make_board(device_id, main_script, extra_config=None, files=None)`: a started board with a
    registered device; stopped after the test."""
    boards: list[BoardProcess] = []

    def make(device_id: str, main: str, extra_config: dict | None = None,
             files: dict[str, str | bytes] | None = None, target: HubProcess | None = None) -> BoardProcess:
        the_hub = target or hub
        cs = the_hub.create_device(device_id)
        all_files = board_files(the_hub, cs, extra_config)
        all_files.update(files or {})
        board = BoardProcess(tmp_path / device_id, "esp32", main=main, files=all_files, runtime=board_runtime,
                             compiled=board_runtime == "unix")
        boards.append(board)
        return board.start()

    yield make
    for board in boards:
        board.stop()
