"""micropython-lib packages the board may use beside the project's own code, fetched from PyPI.

`umqtt.simple` is what most MicroPython MQTT code is written against; the agent's own client has
the same interface, and a user may pass umqtt.simple's `MQTTClient` instead. PyPI's
`micropython-umqtt.simple` cannot be installed by pip (its archive has no setup.py), so its source
archive is fetched from the package index, checked against a pinned SHA-256 and unpacked here.

PyPI's newest, 1.3.4, does `import ussl`, which MicroPython 1.23+ no longer has; it ships with
`compat/ussl.py`, a one-line alias, rather than patched.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from boardkit.profiles import REPO_ROOT

INDEX = "https://pypi.org/simple"
CACHE = REPO_ROOT / "build" / "vendor"


@dataclass(frozen=True)
class VendoredPackage:
    project: str
    version: str
    sha256: str
    members: dict[str, str]  # path in the archive -> path on the board (under /lib)
    extras: tuple[str, ...] = ()  # files of boardkit/compat/ that go beside it (under /lib)


UMQTT_SIMPLE = VendoredPackage(
    project="micropython-umqtt.simple",
    version="1.3.4",
    sha256="b6a2520239e3992c63a7de9370ee9b3d9d27819a90359c521f1c0f7ccab8d12f",
    members={"umqtt/simple.py": "umqtt/simple.py"},
    extras=("ussl.py",),
)
COMPAT = Path(__file__).resolve().parent / "compat"


class VendorError(RuntimeError):
    pass


def _archive_url(package: VendoredPackage) -> str:
    normalized = re.sub(r"[-_.]+", "-", package.project).lower()
    with urllib.request.urlopen(f"{INDEX}/{normalized}/", timeout=60) as response:
        page = response.read().decode()
    filename = f"{package.project}-{package.version}.tar.gz"
    for href in re.findall(r'href="([^"]+)"', page):
        if href.split("#")[0].endswith("/" + filename):
            return href.split("#")[0]
    raise VendorError(f"{filename} is not on the package index")


def fetch(package: VendoredPackage = UMQTT_SIMPLE, cache: Path = CACHE) -> dict[str, Path]:
    """The package's files, as {path under /lib on the board: local file}; downloads once."""
    folder = cache / f"{package.project}-{package.version}"
    wanted = {board: folder / board for board in package.members.values()}
    extras = {name: COMPAT / name for name in package.extras}
    if all(path.exists() for path in wanted.values()):
        return {**wanted, **extras}
    with urllib.request.urlopen(_archive_url(package), timeout=60) as response:
        data = response.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != package.sha256:
        raise VendorError(f"{package.project} {package.version}: archive SHA-256 is {digest}, expected {package.sha256}")
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive.getmembers():
            for suffix, board_path in package.members.items():
                if member.name.endswith("/" + suffix):
                    extracted = archive.extractfile(member)
                    if extracted is None:
                        continue
                    target = folder / board_path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(extracted.read())
    missing = [board for board, path in wanted.items() if not path.exists()]
    if missing:
        raise VendorError(f"{package.project} {package.version}: archive lacks {', '.join(missing)}")
    return {**wanted, **extras}
