"""Fixtures for tests against a real local hub (a subprocess on its own loopback address).

``hub``: a fresh hub per test (about 1 s to start). ``module_hub``: one hub shared by a test
module, for tests that only add their own devices. Both yield a started
:class:`localhub.testing.HubProcess` and stop it afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from localhub.testing import HubProcess


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    proc = HubProcess(tmp_path / "hub")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def module_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    proc = HubProcess(tmp_path_factory.mktemp("hub"))
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
