"""`make bench`: the project's figures, measured side by side in one run, printed as a table and
written to `bench-results.json`."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from boardkit import mpy, profiles


def mpy_sizes() -> dict[str, dict[str, int]]:
    """Bytes of compiled .mpy per board architecture (boot.py/main.py stay source)."""
    sizes: dict[str, dict[str, int]] = {}
    seen_arch: set[str] = set()
    for name in profiles.available():
        profile = profiles.load(name)
        if profile.mpy_arch in seen_arch:
            continue
        seen_arch.add(profile.mpy_arch)
        with tempfile.TemporaryDirectory() as tmp:
            compiled = mpy.compile_for(profile, Path(tmp))
            sizes[profile.mpy_arch] = {item.board_path: item.size for item in compiled}
    return sizes


def main() -> int:
    results: dict[str, object] = {}
    sizes = mpy_sizes()
    results["mpy_bytes"] = sizes
    print("Compiled device code (bytes)")
    print(f"{'file':40} " + " ".join(f"{arch:>10}" for arch in sizes))
    files = sorted({path for per_arch in sizes.values() for path in per_arch})
    for path in files:
        print(f"{path:40} " + " ".join(f"{sizes[arch].get(path, 0):10d}" for arch in sizes))
    print(f"{'total':40} " + " ".join(f"{sum(sizes[arch].values()):10d}" for arch in sizes))
    out = Path("bench-results.json")
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
