"""Firmware (app) update: download over HTTPS in chunks, verify SHA-256, stage, switch, reboot.
Imported only when a ``firmwareUpdate`` method arrives.

Package format ``MPYFW1`` (one file, streamed, bounded memory)::

    MPYFW1\\n
    {"version": "1.1.0", "files": [["main.py", 1234], ["version.py", 25], ...]}\\n
    <the files' bytes, concatenated in manifest order>

The manifest line is at most 2048 bytes; names are paths inside ``app/`` (``a-z0-9_./-``, no
``..``, no leading ``/``); the package replaces the whole ``app/`` folder and must contain
``version.py``. The SHA-256 of the whole package comes with the request (method payload
``{"url": "https://...", "sha256": "<64 hex>", "version": "1.1.0"}``), so a package is
verified before a byte of it is unpacked. The server's certificate is checked against the
board's CA (``ca_file``): for the local hub, blob storage (Azurite) behind a SAS URL.

Status progression, reported under ``firmware.fwUpdateStatus`` (IoT Hub's device-management
pattern): ``downloading`` -> ``verifying`` -> ``applying`` -> ``rebooting`` -> ``current`` (after
the new app connects), or ``error`` with ``fwUpdateSubstatus`` naming the reason; the running
version is untouched by any error before the switch. ``rolledback`` if the new app fails to boot.
"""

import binascii
import hashlib
import json
import os

import fwguard
from iothub import transient

PACKAGE = "fw.part"
STAGE = "app.new"
_MAGIC = b"MPYFW1\n"
_MAX_MANIFEST = 2048


class UpdateError(Exception):
    pass


def parse_request(payload):
    """Check the method payload; ``(url, sha256 hex, version or None)`` or UpdateError."""
    if not isinstance(payload, dict):
        raise UpdateError("payload must be {url, sha256[, version]}")
    url = payload.get("url")
    digest = payload.get("sha256")
    version = payload.get("version")
    if not isinstance(url, str) or not url.startswith("https://"):
        raise UpdateError("url must be an https:// URL")
    if not isinstance(digest, str) or len(digest) != 64:
        raise UpdateError("sha256 must be 64 hex digits")
    try:
        binascii.unhexlify(digest)
    except ValueError:
        raise UpdateError("sha256 must be 64 hex digits")
    if version is not None and not isinstance(version, str):
        raise UpdateError("version must be text")
    return url, digest.lower(), version


def _split_url(url):
    split_host_port = transient("iothub.net").split_host_port

    rest = url[8:]
    slash = rest.find("/")
    if slash <= 0:
        raise UpdateError("url has no path")
    host, port = split_host_port(rest[:slash], 443)
    return host, port, rest[slash:]


_PIECE = 2048


def download(url, ca, chunk, feed=None, timeout=30):
    """GET ``url`` into PACKAGE through one ``chunk``-byte buffer; returns (size, sha256 hex)."""
    import gc

    gc.collect()  # before the imports and the buffer: both need the heap in one piece (see upload_file)
    from iothub.http import HTTPConnection

    tls_context = transient("iothub.net").tls_context

    host, port, path = _split_url(url)
    conn = HTTPConnection(host, port, tls_context(ca), timeout)
    buf = bytearray(chunk)
    h = hashlib.sha256()
    size = 0
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        if resp.status != 200:
            resp.drain()
            raise UpdateError("download failed: HTTP %d" % resp.status)
        expected = resp.headers.get("content-length")
        with open(PACKAGE, "wb") as f:
            while True:
                n = resp.readinto(buf)
                if not n:
                    break
                mv = memoryview(buf)[:n]
                h.update(mv)
                f.write(mv)
                size += n
                if feed:
                    feed()
        if expected is not None and int(expected) != size:
            raise UpdateError("download cut short")
    finally:
        conn.close()
    return size, binascii.hexlify(h.digest()).decode()


def _check_name(name):
    if not isinstance(name, str) or not name or name[0] == "/" or ".." in name:
        raise UpdateError("bad file name in package")
    for c in name:
        if not ("a" <= c <= "z" or "0" <= c <= "9" or c in "_./-" or "A" <= c <= "Z"):
            raise UpdateError("bad file name in package")


def _makedirs(path):
    part = ""
    for piece in path.split("/")[:-1]:
        part = piece if not part else part + "/" + piece
        if not fwguard.exists(part):
            os.mkdir(part)


def unpack(chunk, feed=None):
    """Unpack PACKAGE into STAGE; returns the manifest's version. UpdateError if malformed."""
    fwguard.rmtree(STAGE)
    os.mkdir(STAGE)
    buf = bytearray(chunk)
    with open(PACKAGE, "rb") as f:
        if f.read(len(_MAGIC)) != _MAGIC:
            raise UpdateError("not an MPYFW1 package")
        line = f.readline(_MAX_MANIFEST)
        if not line.endswith(b"\n"):
            raise UpdateError("manifest line missing or too long")
        try:
            manifest = json.loads(line)
        except ValueError:
            raise UpdateError("manifest is not JSON")
        line = None
        files = manifest.get("files") if isinstance(manifest, dict) else None
        version = manifest.get("version") if isinstance(manifest, dict) else None
        if not isinstance(version, str) or not version or not isinstance(files, list):
            raise UpdateError("manifest needs version and files")
        names = []
        for entry in files:
            if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[1], int) or entry[1] < 0:
                raise UpdateError("manifest entry must be [name, size]")
            _check_name(entry[0])
            names.append(entry[0])
        if "version.py" not in names:
            raise UpdateError("package has no version.py")
        for name, size in files:
            target = STAGE + "/" + name
            _makedirs(target)
            with open(target, "wb") as out:
                left = size
                while left:
                    n = f.readinto(memoryview(buf)[: min(left, chunk)])
                    if not n:
                        raise UpdateError("package shorter than its manifest")
                    out.write(memoryview(buf)[:n])
                    left -= n
                    if feed:
                        feed()
        if f.read(1):
            raise UpdateError("package longer than its manifest")
    return version


def cleanup():
    fwguard.rmtree(STAGE)
    try:
        os.remove(PACKAGE)
    except OSError:
        pass


def run(payload, ca, chunk, report, feed=None):
    """The whole update up to the switch. ``report(status, substatus, pending)`` publishes
    progress. True: switched, the caller reports ``rebooting`` and resets. False: error reported,
    nothing changed."""
    VERSION = transient("app.version").VERSION

    # The download and unpack buffer: at most 2 KB whatever the profile's chunk. Its speed does
    # not depend on it, and a bigger block may not exist in one piece on a fragmented heap (8 KB
    # failed with 60 KB free on the unix port at an ESP32's heap).
    if chunk > _PIECE:
        chunk = _PIECE
    pending = ""
    try:
        url, digest, pending = parse_request(payload)
        pending = pending or ""
        report("downloading", "", pending)
        size, got = download(url, ca, chunk, feed)
        report("verifying", "%d bytes" % size, pending)
        if got != digest:
            raise UpdateError("SHA-256 mismatch")
        report("applying", "", pending)
        version = unpack(chunk, feed)
        if pending and version != pending:
            raise UpdateError("package is version %s, not %s" % (version, pending))
        try:
            os.remove(PACKAGE)
        except OSError:
            pass
        fwguard.switch(version, VERSION)
        return version
    except Exception as e:  # UpdateError, OSError, TLS errors, ProtocolError: all end here
        cleanup()
        reason = str(e) if isinstance(e, UpdateError) else "%s: %s" % (type(e).__name__, e)
        report("error", reason, pending)
        return None
