"""Fixtures for the firmware tests: one local hub per module (each test makes its own device)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from localhub.testing import HubProcess


@pytest.fixture(scope="module")
def fw_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    proc = HubProcess(tmp_path_factory.mktemp("hub"))
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def own_hub(tmp_path: Path) -> Iterator[HubProcess]:
    """A hub of the test's own, for tests that stop and restart it."""
    proc = HubProcess(tmp_path / "hub")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
