"""Loaded into the upstream e2e suite's pytest (``-p localhub_e2e_plugin``): what the suite needs
from its machine that a local hub's machine has differently. Nothing in the suite is changed.

- uamqp (the service SDK's C2D client) trusts certifi's bundle only: pointed at the hub's CA
  (``LOCALHUB_CA``). The device SDK, azure-eventhub and msrest are pointed at it by the runner's
  environment (SSL_CERT_FILE, REQUESTS_CA_BUNDLE).
- The suite drops connections with iptables before some tests and restores them before every
  test; on this machine nothing may touch the host's firewall, so those calls do nothing and the
  tests that need them are deselected by the runner. (At import: the suite's conftest calls
  iptables as it is imported.)
"""

from __future__ import annotations

import os


import uamqp.authentication.common as uamqp_auth
from dev_utils import iptables


def _untouched(*args: object, **kwargs: object) -> None:
    return None


_CA = os.environ["LOCALHUB_CA"]
uamqp_auth.certifi.where = lambda: _CA
iptables.reconnect_all = _untouched
iptables.disconnect_output_port = _untouched
