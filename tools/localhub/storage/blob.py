"""Blob storage for device file upload: Azurite run by the hub, or an Azure storage account.

What devices get (see services/uploads.py): a blob service SAS (``sv, sr=b, sp=cw, se, spr=https, sig``)
for one blob, and the three pieces IoT Hub hands out, ``hostName``, ``containerName`` and
``blobName``, which a device joins as ``https://{hostName}/{containerName}/{blobName}{sasToken}``.

Two backends behind :class:`Storage`:

- **Azurite** (default): Microsoft's storage emulator, npm ``azurite`` pinned in ``tools/node``,
  run with Node as a child of the hub. It is started on first need (the first upload request or
  ``GET /localhub/storage``), so hubs that never see an upload pay nothing for it (about 100 MB
  of RAM), and stopped with the hub. It serves HTTPS with the hub's own server certificate, so a
  device that trusts the hub's CA trusts the storage too, and it listens where the hub listens
  (a loopback address in tests, every interface for boards on the LAN). Its data lives in
  ``<state>/azurite``; its port is remembered in ``<state>/storage.json`` and reused on restart,
  so SAS URLs handed out before a restart still work after it. Azurite is path-style:
  ``https://<ip>:<port>/devstoreaccount1/<container>/<blob>``, hence hostName ``<ip>:<port>`` and
  containerName ``devstoreaccount1/<container>``. The account keeps Azurite's usual name but gets
  a random key per state folder (``AZURITE_ACCOUNTS``): the well-known emulator key would let
  anyone on the LAN read every upload.
- **An Azure storage connection string** (``serve --storage-connection-string``): hostName is the
  account's blob host, containerName the container.

The hub's own storage calls (create the container, read a blob's size for the notification) are
plain HTTPS requests signed with an account SAS: the hub needs no Azure SDK at run time.
Azurite is started with ``--skipApiVersionCheck`` so clients newer than it (``azure-storage-blob``
12.31) work unchanged. If the hub dies, Azurite gets SIGTERM from the kernel
(``PR_SET_PDEATHSIG``), saves its metadata and exits: no orphan Node processes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ctypes
import hashlib
import hmac
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from ..support.netutil import port_free
from . import certs

log = logging.getLogger("localhub.blob")

# Storage service version the SAS tokens are signed for (2020-12-06 string-to-sign layout).
# Azurite 3.35 and Azure both accept it.
SAS_VERSION = "2021-08-06"
AZURITE_ACCOUNT = "devstoreaccount1"
DEFAULT_CONTAINER = "fileupload"
STORAGE_JSON = "storage.json"
AZURITE_DIR = "azurite"
AZURITE_LOG = "azurite.log"
AZURITE_MAIN = (Path(__file__).resolve().parents[2] / "node" / "node_modules" / "azurite"
                / "dist" / "src" / "blob" / "main.js")
AZURITE_STARTUP_TIMEOUT = 30.0
PR_SET_PDEATHSIG = 1


class StorageError(Exception):
    """Storage unusable (Azurite missing or not starting, storage refusing the hub's calls)."""


# --- shared access signatures (pure) ------------------------------------------------------------
def sas_time(unix: int) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``, the form SAS ``st``/``se`` take."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix))


def _sign(key_b64: str, string_to_sign: str) -> str:
    try:
        key = base64.b64decode(key_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise StorageError("storage account key is not base64") from exc
    digest = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def blob_sas(account: str, key_b64: str, container: str, blob: str, permissions: str,
             expiry: int, protocol: str = "https", version: str = SAS_VERSION) -> str:
    """A blob service SAS query string (no leading ``?``) for ``container/blob``.

    ``blob`` is the decoded blob name; ``expiry`` Unix seconds. String to sign as documented for
    service SAS versions 2020-12-06 and later (16 lines; unused fields empty).
    """
    se = sas_time(expiry)
    canonical = f"/blob/{account}/{container}/{blob}"
    string_to_sign = "\n".join([
        permissions, "", se, canonical, "", "", protocol, version, "b",
        "", "", "", "", "", "", "",  # snapshot, encryption scope, rscc, rscd, rsce, rscl, rsct
    ])
    sig = _sign(key_b64, string_to_sign)
    return (f"sv={version}&sr=b&sp={permissions}&se={quote(se, safe='')}&spr={protocol}"
            f"&sig={quote(sig, safe='')}")


def account_sas(account: str, key_b64: str, permissions: str, expiry: int,
                resource_types: str = "sco", services: str = "b", protocol: str = "https",
                version: str = SAS_VERSION) -> str:
    """An account SAS query string: what the hub signs its own storage calls with."""
    se = sas_time(expiry)
    string_to_sign = "\n".join([account, permissions, services, resource_types, "", se, "",
                                protocol, version, "", ""])
    sig = _sign(key_b64, string_to_sign)
    return (f"sv={version}&ss={services}&srt={resource_types}&sp={permissions}"
            f"&se={quote(se, safe='')}&spr={protocol}&sig={quote(sig, safe='')}")


# --- the account in use -------------------------------------------------------------------------
@dataclass(frozen=True)
class StorageAccount:
    """A storage account reachable over HTTPS.

    ``endpoint``: the blob service URL the hub itself calls (``https://127.0.0.1:P/devstoreaccount1``
    or ``https://acct.blob.core.windows.net``). ``public_host`` and ``path_prefix``: what devices
    are told, hostName and the part of containerName before the container.
    """

    name: str
    key: str
    endpoint: str
    public_host: str
    path_prefix: str
    ca_path: str | None = None  # CA bundle the hub verifies the endpoint with (None: system CAs)

    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=https;AccountName={self.name};AccountKey={self.key};"
                f"BlobEndpoint={self.endpoint};")

    def public_url(self, container: str, blob: str) -> str:
        return f"https://{self.public_host}/{self.path_prefix}{container}/{quote(blob, safe='/')}"


def parse_storage_connection_string(text: str, public_host: str | None = None) -> StorageAccount:
    """An Azure storage connection string -> :class:`StorageAccount` (HTTPS blob endpoint only)."""
    fields: dict[str, str] = {}
    for part in text.strip().split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError("storage connection string field without '='")
        fields[key.strip().lower()] = value.strip()
    name, key = fields.get("accountname"), fields.get("accountkey")
    if not name or not key:
        raise ValueError("storage connection string needs AccountName and AccountKey")
    try:
        base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("AccountKey is not base64") from exc
    endpoint = fields.get("blobendpoint")
    if endpoint:
        if fields.get("defaultendpointsprotocol", "https").lower() != "https" \
                or not endpoint.lower().startswith("https://"):
            raise ValueError("the blob endpoint must be HTTPS (devices only upload over TLS)")
        parts = urlsplit(endpoint)
        path = parts.path.strip("/")
        return StorageAccount(name, key, endpoint.rstrip("/"), public_host or parts.netloc,
                              f"{path}/" if path else "")
    if fields.get("defaultendpointsprotocol", "https").lower() != "https":
        raise ValueError("DefaultEndpointsProtocol must be https")
    host = f"{name}.blob.{fields.get('endpointsuffix', 'core.windows.net')}"
    return StorageAccount(name, key, f"https://{host}", public_host or host, "")


def _client_ssl(account: StorageAccount) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=account.ca_path)


# --- Azurite --------------------------------------------------------------------------------------
def _free_port(host: str) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
    finally:
        sock.close()


def _find_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # Linux (glibc, musl)
    except (OSError, AttributeError):
        return None


# Looked up once here: between fork and exec only this already-resolved call may run.
_PRCTL = _find_prctl()


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM the child when the hub dies, even by SIGKILL (Linux only)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGTERM))


@dataclass
class AzuriteConfig:
    state_dir: Path
    listen_host: str  # where Azurite listens (the hub's listen address, maybe 0.0.0.0)
    client_host: str  # where the hub dials it (a concrete address)
    public_host: str  # what devices dial (the hub's advertised host)
    cert: Path
    key: Path
    ca_path: Path


class Azurite:
    """One ``azurite-blob`` child process; :meth:`start` returns the account it serves."""

    def __init__(self, config: AzuriteConfig) -> None:
        self.config = config
        self.proc: asyncio.subprocess.Process | None = None
        self.port: int | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def _settings(self) -> dict[str, Any]:
        """storage.json: the account key (made once) and the last port."""
        path = self.config.state_dir / STORAGE_JSON
        data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        if not data.get("key"):
            data["key"] = base64.b64encode(os.urandom(64)).decode("ascii")
            self._save_settings(data)
        return data

    def _save_settings(self, data: dict[str, Any]) -> None:
        path = self.config.state_dir / STORAGE_JSON
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        tmp.replace(path)

    def _account(self, key: str, port: int) -> StorageAccount:
        cfg = self.config
        return StorageAccount(AZURITE_ACCOUNT, key,
                              f"https://{cfg.client_host}:{port}/{AZURITE_ACCOUNT}",
                              f"{cfg.public_host}:{port}", f"{AZURITE_ACCOUNT}/",
                              str(cfg.ca_path))

    async def start(self) -> StorageAccount:
        node = shutil.which("node")
        if node is None:
            raise StorageError("file upload needs Node.js (`node` not found on PATH)")
        if not AZURITE_MAIN.exists():
            raise StorageError(f"Azurite is not installed ({AZURITE_MAIN} missing; "
                               "run `npm ci` in tools/node)")
        cfg = self.config
        settings = self._settings()
        location = cfg.state_dir / AZURITE_DIR
        location.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["AZURITE_ACCOUNTS"] = f"{AZURITE_ACCOUNT}:{settings['key']}"
        last_error = "no attempt"
        for attempt in range(3):
            # The port of the last run first: SAS URLs handed out before a restart stay valid.
            port = settings.get("port")
            if attempt or not isinstance(port, int) or not port_free(cfg.listen_host, port):
                port = _free_port(cfg.listen_host)
            cmd = [node, str(AZURITE_MAIN), "--blobHost", cfg.listen_host, "--blobPort", str(port),
                   "--cert", str(cfg.cert), "--key", str(cfg.key), "--location", str(location),
                   "--disableTelemetry", "--skipApiVersionCheck", "--disableProductStyleUrl",
                   "--silent"]
            with open(cfg.state_dir / AZURITE_LOG, "ab") as out:
                self.proc = await asyncio.create_subprocess_exec(
                    *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                    preexec_fn=_die_with_parent)
            if await self._wait_listening(cfg.client_host, port):
                self.port = port
                if settings.get("port") != port:
                    settings["port"] = port
                    self._save_settings(settings)
                log.info("Azurite (pid %d) serving blobs on https://%s:%d", self.proc.pid,
                         cfg.public_host, port)
                return self._account(settings["key"], port)
            last_error = f"exit code {self.proc.returncode}"
            await self.stop()
        raise StorageError(f"Azurite did not start ({last_error}); see {cfg.state_dir / AZURITE_LOG}")

    async def _wait_listening(self, host: str, port: int) -> bool:
        """Poll until the port accepts (Azurite is up in well under a second) or Azurite exits."""
        assert self.proc is not None
        deadline = time.monotonic() + AZURITE_STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                return False
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
                writer.close()
                return True
            except (OSError, asyncio.TimeoutError):
                await asyncio.sleep(0.05)
        return False

    async def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()  # Azurite saves its metadata on SIGTERM
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


# --- the storage the hub uses -------------------------------------------------------------------
class Storage:
    """Lazily started storage for one container; every method is a coroutine on the hub's loop."""

    def __init__(self, container: str = DEFAULT_CONTAINER, account: StorageAccount | None = None,
                 azurite: AzuriteConfig | None = None) -> None:
        if (account is None) == (azurite is None):
            raise ValueError("give exactly one of account and azurite")
        self.container = container
        self._account = account
        self._azurite = Azurite(azurite) if azurite is not None else None
        self._ready: StorageAccount | None = None
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    async def ensure(self) -> StorageAccount:
        """Start Azurite if needed, create the container once; return the account."""
        async with self._lock:
            if self._ready is not None and (self._azurite is None or self._azurite.running):
                return self._ready
            account = self._account
            if self._azurite is not None:
                account = await self._azurite.start()
            assert account is not None
            await self._create_container(account)
            self._ready = account
            return account

    def used_before(self) -> bool:
        """Azurite ran for this state folder before: a restarted hub restarts it at once, so SAS
        URLs handed out before the restart keep working."""
        return self._azurite is not None and (self._azurite.config.state_dir / STORAGE_JSON).exists()

    def _http(self, account: StorageAccount) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=_client_ssl(account)),
                timeout=aiohttp.ClientTimeout(total=30))
        return self._session

    def _token(self, account: StorageAccount, permissions: str) -> str:
        return account_sas(account.name, account.key, permissions, int(time.time()) + 600)

    async def _create_container(self, account: StorageAccount) -> None:
        url = (f"{account.endpoint}/{self.container}?restype=container&"
               f"{self._token(account, 'rc')}")
        try:
            async with self._http(account).put(url, headers={"x-ms-version": SAS_VERSION,
                                                             "Content-Length": "0"}) as resp:
                if resp.status not in (201, 409):  # 409: ContainerAlreadyExists
                    raise StorageError(f"creating container {self.container!r}: HTTP {resp.status}"
                                       f" {(await resp.text())[:200]}")
        except aiohttp.ClientError as exc:
            raise StorageError(f"storage unreachable: {exc}") from exc

    async def blob_properties(self, blob: str) -> tuple[int, float] | None:
        """(size in bytes, last-modified Unix time) of a blob, or None when it does not exist."""
        account = await self.ensure()
        url = (f"{account.endpoint}/{self.container}/{quote(blob, safe='/')}?"
               f"{self._token(account, 'r')}")
        try:
            async with self._http(account).head(url, headers={"x-ms-version": SAS_VERSION}) as resp:
                if resp.status == 404:
                    return None
                if resp.status != 200:
                    raise StorageError(f"blob properties: HTTP {resp.status}")
                size = int(resp.headers.get("Content-Length", "0"))
                modified = resp.headers.get("Last-Modified")
                when = parsedate_to_datetime(modified).timestamp() if modified else time.time()
                return size, when
        except aiohttp.ClientError as exc:
            raise StorageError(f"storage unreachable: {exc}") from exc

    def device_sas(self, account: StorageAccount, blob: str, expiry: int) -> str:
        """What a device gets: create + write on that one blob until ``expiry``."""
        return blob_sas(account.name, account.key, self.container, blob, "cw", expiry)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._azurite is not None:
            await self._azurite.stop()
        self._ready = None


def make_storage(state_dir: Path, listen_host: str, public_host: str, cert: Path, key: Path,
                 connection_string: str | None = None,
                 container: str = DEFAULT_CONTAINER) -> Storage:
    """The hub's storage: the given Azure account, else Azurite beside the hub (same address,
    same certificate). Raises ValueError for a bad connection string or container name."""
    check_container_name(container)
    if connection_string:
        return Storage(container, account=parse_storage_connection_string(connection_string))
    wildcard = listen_host in ("0.0.0.0", "::", "")
    client_host = "127.0.0.1" if wildcard else listen_host
    return Storage(container, azurite=AzuriteConfig(
        state_dir, "0.0.0.0" if wildcard else listen_host, client_host, public_host, cert, key,
        state_dir / certs.CA_CERT))


def check_container_name(name: str) -> None:
    """Azure: 3-63 characters, lower-case letters, digits and single hyphens, letter/digit first."""
    ok = (3 <= len(name) <= 63 and name[0].isalnum() and name[-1].isalnum() and "--" not in name
          and all(c.islower() or c.isdigit() or c == "-" for c in name) and name.isascii())
    if not ok:
        raise ValueError(f"invalid container name {name!r}")
