"""The repository's firmware boots on every board profile of the host emulation layer."""

import re
import time

import pytest

from hostemu.testing import BoardProcess


@pytest.mark.parametrize("board", ["esp32", "esp32s3", "esp32c3", "esp8266"])
def test_firmware_brings_up_wifi_syncs_the_clock_and_names_the_board(tmp_path, board):
    with BoardProcess(tmp_path / board, board) as run:
        run.expect(r"^wifi: connected")
        clock = run.expect(r"^clock: (\d{4})-\d\d-\d\dT")
        info = run.expect(r"^board: (\S+) id: ([0-9a-f]{12}) free: (\d+) reset cause: (\d+)$")
        run.wait()
    assert int(clock.group(1)) == time.gmtime().tm_year
    assert info.group(1) == board
    assert int(info.group(3)) > 0


def test_firmware_reports_a_wifi_it_cannot_join(tmp_path):
    config = '{"wifi": {"ssid": "hostemu", "password": "not it"}}'
    with BoardProcess(tmp_path / "dev", files={"config.json": config}) as run:
        run.expect(r"^wifi: attempt 1 failed, status 202$")
        run.stop()
    assert re.search(r"clock:", run.output) is None
