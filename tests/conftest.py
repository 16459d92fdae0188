"""Fixtures every test tier shares."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from localhub.testing import HubProcess
from tls_support import TestCertificates, TlsEchoServer, make_certificates

# The official device SDK's e2e suite runs in a pytest of its own, against a hub of its own
# (tests/upstream/test_upstream_e2e.py), never collected here.
collect_ignore = ["upstream/azure-iot-sdk-python"]
# Started first under xdist: each of these files is one test of about a minute, and one left for
# last keeps a worker busy after the others have run out of work.
_LONG_FIRST = ("tests/upstream/",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def long_first(item: pytest.Item) -> int:
        return 0 if any(part in item.nodeid for part in _LONG_FIRST) else 1

    items.sort(key=long_first)  # stable: the rest keep their order


@pytest.fixture(scope="session")
def test_certificates(tmp_path_factory) -> TestCertificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_echo_server(test_certificates):
    server = TlsEchoServer(test_certificates)
    yield server
    server.close()


@pytest.fixture
def board_runtime() -> str:
    """Which runtime simulated boards use: the CPython emulation, except in tests/unix, which
    overrides this to run the same scenarios on MicroPython's real unix port."""
    return "cpython"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    """A fresh local hub for one test (about 1 s to start), on a loopback address of its own."""
    with HubProcess(tmp_path / "hub") as proc:
        yield proc


@pytest.fixture(scope="module")
def module_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """One local hub shared by a test module, for tests that only add their own devices."""
    with HubProcess(tmp_path_factory.mktemp("hub")) as proc:
        yield proc


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--board-port", default=None,
                     help="Serial port of a real board (e.g. /dev/ttyUSB0): runs the hardware tier.")
    parser.addoption("--board-name", default="esp32", help="Board profile of the board on --board-port.")
    parser.addoption("--board-wifi", default=None, metavar="SSID:PASSWORD",
                     help="The Wi-Fi the real board joins (the local hub listens on this machine's LAN address).")


@pytest.fixture
def board_port(request: pytest.FixtureRequest) -> str:
    """The real board's serial port; hardware-tier tests are skipped without one."""
    port = request.config.getoption("--board-port")
    if not port:
        pytest.skip("hardware tier: no board attached (run with --board-port /dev/ttyUSB0 --board-wifi SSID:PASSWORD)")
    return port
