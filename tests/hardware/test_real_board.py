"""Hardware tier: a real board on --board-port, deployed with the same tools as the emulated one,
against a local hub on this machine's LAN address (the board reaches it over Wi-Fi).

    .venv/bin/python -m pytest tests/hardware --board-port /dev/ttyUSB0 --board-name esp32 \\
        --board-wifi 'SSID:PASSWORD'

Without --board-port every test here is skipped with the reason.
"""

import pytest
from boardkit import deploy, profiles, provision
from localhub.storage.certs import lan_address
from localhub.testing import HubProcess


@pytest.fixture
def lan_hub(tmp_path):
    address = lan_address()
    if address is None:
        pytest.skip("hardware tier: this machine has no LAN address for the board to reach")
    with HubProcess(tmp_path / "hub", host=address) as hub:
        yield hub


def test_deployed_board_connects_and_sends_telemetry(tmp_path, board_port, request, lan_hub):
    wifi = request.config.getoption("--board-wifi")
    if not wifi or ":" not in wifi:
        pytest.skip("hardware tier: give the board's Wi-Fi as --board-wifi SSID:PASSWORD")
    ssid, _, password = wifi.partition(":")
    profile = profiles.load(request.config.getoption("--board-name"))
    config = tmp_path / "config"
    device_id = "hw-" + profile.name
    lan_hub.create_device(device_id)
    provision.from_local_hub(config, lan_hub.state_dir, device_id, ssid, password, telemetry_interval=5)
    plan = deploy.deploy(profile, board_port, config, compiled=True)
    assert "config.json" in plan.changed or "config.json" in plan.unchanged
    messages = lan_hub.wait_telemetry(device_id, 2, timeout=120)
    assert len(messages) >= 2
    twin = lan_hub.get_twin(device_id)
    assert twin["properties"]["reported"], "the agent reports its state after connecting"
