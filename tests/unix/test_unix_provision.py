"""DPS registration on MicroPython's unix port (real socket, select and mbedTLS): the e2e
scenario again, with this tier's fixtures."""

import pytest

from test_e2e_provision import test_a_board_provisions_caches_its_assignment_and_connects_where_dps_said  # noqa: F401

pytestmark = pytest.mark.unix
