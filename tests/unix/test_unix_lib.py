"""The library's end-to-end scenarios (tests/e2e) on MicroPython's unix port: telemetry with
properties, C2D, twin get/reported/desired with a stale patch ignored, methods through the
official service SDK, umqtt.simple from PyPI as the transport, SAS renewal under load, reconnect
with growing delays and twin resync after the hub was killed, uploads of 0 B to 1 MB read back
from Azurite, an expired SAS failing cleanly with its notification."""

import pytest

from test_e2e_device import (  # noqa: F401  (collected here again, with this tier's fixtures)
    registry, test_telemetry_c2d_twin_and_methods, test_umqtt_simple_refuses_a_hub_it_cannot_verify,
    test_umqtt_simple_transport, umqtt_files)
from test_e2e_session import (  # noqa: F401
    test_reconnect_backoff_and_twin_resync_after_hub_restart, test_sas_renewal_keeps_every_message)
from test_e2e_upload import short_sas_hub, test_expired_sas_fails_cleanly, test_uploads_of_every_size_read_back_byte_for_byte  # noqa: F401

pytestmark = pytest.mark.unix  # MicroPython's unix port: the real socket, select and ssl
