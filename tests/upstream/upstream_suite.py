"""Runs the official device SDK's own end-to-end suite against a local hub: azure-iot-sdk-python's
``tests/e2e/iothub_e2e/sync``, vendored unchanged (azure-iot-sdk-python/, MIT licence, commit
e75d1c2), in a pytest of its own.

The suite is given what it is given in Microsoft's pipeline: the hub's service connection string
(it registers a device with azure-iot-hub for each run and deletes it after) and the Event
Hub-compatible connection string, through which its EventHubConsumerClient checks that every
message arrived; C2D goes out with ``send_c2d_message`` over AMQP, twins and methods over HTTPS.
The hub's CA is trusted through the environment (SSL_CERT_FILE: the device SDK and azure-eventhub;
REQUESTS_CA_BUNDLE: msrest) and localhub_e2e_plugin.py (uamqp).

Not run: the tests that drop the network with iptables (this machine's firewall is not the
tests' to change), the stress tests the suite itself leaves out by default, and, to keep
``make test`` short, sync/test_sync_connect_disconnect.py and sync/test_sync_sas_renewal.py (they
pass here too: 12 and 4 tests, 3.5 minutes, with 4 skipped by the suite itself). The aio half
needs a pytest-asyncio old enough to let a conftest override ``event_loop``, which pytest 9 does
not run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from localhub.testing import HubProcess

HERE = Path(__file__).resolve().parent
UPSTREAM = HERE / "azure-iot-sdk-python"
SUITE = UPSTREAM / "tests" / "e2e" / "iothub_e2e"


def _results(junit: Path) -> dict[str, str]:
    """``Class::test[params]`` -> passed / failure: message / error: ... / skipped: reason."""
    results: dict[str, str] = {}
    for case in ElementTree.parse(junit).iter("testcase"):
        name = case.get("classname", "").rpartition(".")[2] + "::" + case.get("name", "")
        outcome = "passed"
        for kind in ("failure", "error", "skipped"):
            found = case.find(kind)
            if found is not None:
                outcome = f"{kind}: {(found.get('message') or '')[:300]}"
        results[name] = outcome
    return results


def assert_suite_passes(tmp_path: Path, files: list[str], expected: set[str]) -> None:
    """Run ``files`` of the suite against a hub of their own; every test in ``expected`` (by
    class and name) must have run and passed, and nothing else may have failed: a test that goes
    missing (not collected, skipped) fails this as surely as one that fails."""
    junit = tmp_path / "upstream-e2e.xml"
    # twin tests read reported patches from the built-in endpoint: the suite's hub has that route
    with HubProcess(tmp_path / "hub", serve_args=("--route", "twinChangeEvents")) as hub:
        env = dict(os.environ)
        env.pop("IOTHUB_E2E_IOTHUB_CONNECTION_STRING", None)
        env.update({
            "IOTHUB_CONNECTION_STRING": hub.service_connection_string,
            "EVENTHUB_CONNECTION_STRING": hub.eventhub_connection_string(),
            "SSL_CERT_FILE": str(hub.ca_path), "REQUESTS_CA_BUNDLE": str(hub.ca_path),
            "LOCALHUB_CA": str(hub.ca_path),
            "PYTHONPATH": os.pathsep.join([str(HERE), str(UPSTREAM / "dev_utils"), str(SUITE)]),
        })
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "localhub_e2e_plugin", "-p", "no:cacheprovider",
             "-o", "addopts=", "-m", "not stress and not dropped_connection and not uses_iptables",
             "-q", "--junitxml", str(junit), *files],
            cwd=SUITE, env=env, capture_output=True, text=True, timeout=900)
    results = _results(junit)
    not_passed = {name: outcome for name, outcome in results.items() if outcome != "passed"}
    assert not not_passed, f"{not_passed}\n{run.stdout[-3000:]}"
    assert expected <= set(results), sorted(expected - set(results))
    assert run.returncode == 0, run.stdout[-3000:]
