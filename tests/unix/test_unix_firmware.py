"""The agent app's scenarios (tests/firmware) on MicroPython's unix port: reboot, factoryReset,
uploadFile, firmwareUpdate (a good package, a bad one, one that cannot start and is rolled
back), the offline ring through an outage and across a power cut."""

import pytest

from test_fw_device_mgmt import (  # noqa: F401  (collected here again, with this tier's fixtures)
    test_factory_reset_clears_the_config_but_keeps_identity, test_reboot_answers_restarts_and_lastreboot_changes,
    test_upload_file_method_sends_a_file_from_flash)
from test_fw_offline import (  # noqa: F401
    test_a_full_ring_drops_the_oldest_counts_it_and_survives_a_power_cut,
    test_an_outage_of_20_s_loses_nothing_and_keeps_the_order)
from test_fw_update import (  # noqa: F401
    test_a_good_package_ends_current_on_the_new_version, test_a_version_that_cannot_start_is_rolled_back,
    test_a_wrong_hash_or_a_broken_download_ends_in_error_on_the_old_version)

pytestmark = pytest.mark.unix  # MicroPython's unix port: the real socket, select and ssl
