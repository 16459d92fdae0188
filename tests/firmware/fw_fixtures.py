"""Fixtures for the firmware tests: one local hub per module (each test makes its own device)."""

from __future__ import annotations

import pytest

from localhub.testing import HubProcess


@pytest.fixture(scope="module")
def fw_hub(module_hub: HubProcess) -> HubProcess:
    return module_hub


@pytest.fixture
def own_hub(hub: HubProcess) -> HubProcess:
    """A hub of the test's own, for tests that stop and restart it."""
    return hub
