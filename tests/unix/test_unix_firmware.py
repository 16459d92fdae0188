"""The agent app's scenarios (tests/firmware) on MicroPython's unix port: reboot, factoryReset,
uploadFile, firmwareUpdate (a good package, a bad one, one that cannot start and is rolled
back), the offline ring through an outage and across a power cut, provisioning through DPS."""

import pytest

from test_fw_device_mgmt import (  # noqa: F401  (collected here again, with this tier's fixtures)
    test_factory_reset_clears_the_config_but_keeps_identity, test_reboot_answers_restarts_and_lastreboot_changes,
    test_upload_file_method_sends_a_file_from_flash)
from test_fw_dps import test_a_node_with_a_dps_config_provisions_once_and_reboots_onto_its_hub  # noqa: F401
from test_fw_offline import (  # noqa: F401
    test_a_full_ring_drops_the_oldest_counts_it_and_survives_a_power_cut,
    test_an_outage_of_10_s_loses_nothing_and_keeps_the_order)
from test_fw_update import (  # noqa: F401
    test_a_good_package_ends_current_on_the_new_version, test_a_version_that_cannot_start_is_rolled_back,
    test_a_wrong_hash_or_a_broken_download_ends_in_error_on_the_old_version)

pytestmark = pytest.mark.unix  # MicroPython's unix port: the real socket, select and ssl


def test_boots_reports_its_facts_and_sends_numbered_telemetry(fw_hub, tmp_path):
    """The app from power-on on the unix port with the ESP32 profile's heap: Wi-Fi, NTP (the RTC
    starts in 2000), the hub, numbered telemetry, the device facts in the twin."""
    import json

    from fw_support import Board, provision_board, reported, wait_for

    folder = provision_board(fw_hub, tmp_path / "b", "unix-facts", interval=1)
    with Board(folder, "esp32", runtime="unix") as board:
        booted = board.expect_json("booted", 30)
        board.expect_json("hub", 30, connected=True)
        messages = fw_hub.wait_telemetry("unix-facts", 3, 15)
        twin = wait_for(lambda: "device" in reported(fw_hub, "unix-facts") and reported(fw_hub, "unix-facts"),
                        what="device facts reported")
    first = [json.loads(m["body"]) for m in messages[:3]]
    assert booted["boot"] == 1 and booted["resetCause"] == "PWRON_RESET"
    assert [m["seq"] for m in first] == [1, 2, 3] and all(m["boot"] == 1 for m in first)
    assert twin["app"]["board"] == "esp32" and twin["connectivity"]["connected"] is True
    # The free heap the app reports is MicroPython's own: the profile's, scaled to 64 bits, less
    # what the app holds.
    from hostemu.unix.board_process import free_heap_64bit

    assert 0 < twin["device"]["freeHeap"] < free_heap_64bit(110000)
