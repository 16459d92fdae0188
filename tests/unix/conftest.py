"""The unix tier: device code on MicroPython's real unix port (`hostemu run --runtime unix`), its
own socket, select and ssl (mbedTLS) talking to the local hub, only the board's peripherals
bridged. The end-to-end and firmware scenarios of tests/e2e and tests/firmware run here again
with these fixtures (their modules are imported by this tier's test modules), plus what only the
real interpreter shows. Boards get .mpy files, as `boardkit deploy` lays them out, and a heap of
the board profile's free heap on top of what the interpreter and the board modules hold."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for _tier in ("e2e", "firmware"):
    if str(TESTS / _tier) not in sys.path:
        sys.path.insert(0, str(TESTS / _tier))

from e2e_fixtures import hub, make_board  # noqa: E402,F401
from fw_fixtures import fw_hub, own_hub  # noqa: E402,F401


@pytest.fixture
def board_runtime() -> str:
    return "unix"
