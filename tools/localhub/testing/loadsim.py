"""Load simulation: many lightweight MQTT devices over TLS in ONE process (asyncio), and the
"time for a method job to reach N devices" benchmark that ``make bench`` runs.

Each :class:`SimDevice` is a real IoT Hub MQTT client of its own (TLS, SAS token, CONNECT,
SUBSCRIBE ``$iothub/methods/POST/#``) that answers every direct method with status 200 and
``{"device": id, "method": name, "payload": <request payload>}``; unknown methods are not a
thing for it. Built on the hub's own MQTT codec; it costs a socket, a task and a few KB each,
so a thousand fit in one process.

Entry points::

    elapsed = run_method_job(hub, devices=1000)   # hub: a started localhub.testing.HubProcess
    elapsed = bench(devices=1000)                 # starts its own hub in a temporary folder
    python -m localhub.testing.loadsim --devices 1000     # prints the figures as JSON

``run_method_job`` registers the devices (ids ``{prefix}-{n:05d}``), connects them all, schedules
one ``scheduleDeviceMethod`` job over ``STARTS_WITH(deviceId, '{prefix}-')`` and returns the
seconds from the job request to its ``completed`` status; it raises :class:`LoadSimError` when a
device fails to connect or the job does not succeed on every device.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

from ..client.hub_client import HubClient, HubRequestError
from ..protocol import auth
from ..protocol.mqtt_codec import (
    CONNACK_ACCEPTED,
    Connack,
    Connect,
    PacketReader,
    Pingreq,
    Puback,
    Publish,
    Suback,
    Subscribe,
    encode,
)
from ..services import bulk
from ..support import tls_buffers

API_VERSION = "2021-04-12"
KEEPALIVE = 60
METHODS_FILTER = "$iothub/methods/POST/#"


class LoadSimError(RuntimeError):
    pass


class HubLike(Protocol):
    """What the simulation needs of a hub (``localhub.testing.HubProcess`` has it all)."""

    host: str
    mqtt_port: int
    hostname: str
    ca_path: Path

    @property
    def client(self) -> HubClient: ...


def _parse_method_topic(topic: str) -> tuple[str, str] | None:
    """``$iothub/methods/POST/{name}/?$rid={rid}`` -> (name, rid); None for another topic."""
    prefix = "$iothub/methods/POST/"
    if not topic.startswith(prefix):
        return None
    name, sep, query = topic[len(prefix):].partition("/?")
    for part in query.split("&") if sep else []:
        key, _, value = part.partition("=")
        if key == "$rid" and name:
            return name, value
    return None


class SimDevice:
    """One simulated device connection. ``await connect()``, then it answers until ``close()``."""

    def __init__(self, device_id: str, key: str, host: str, port: int, hostname: str,
                 ssl_context: ssl.SSLContext) -> None:
        self.device_id = device_id
        self.key = key
        self.host = host
        self.port = port
        self.hostname = hostname
        self.ssl = ssl_context
        self.answered = 0
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reader = PacketReader()

    async def _next(self, stream: asyncio.StreamReader) -> Any:
        while True:
            packet = self._reader.next_packet()
            if packet is not None:
                return packet
            data = await stream.read(16 * 1024)
            if not data:
                raise ConnectionError(f"{self.device_id}: hub closed the connection")
            self._reader.feed(data)

    async def connect(self, timeout: float = 30.0) -> None:
        stream, writer = await asyncio.wait_for(asyncio.open_connection(
            self.host, self.port, ssl=self.ssl, server_hostname=self.host), timeout)
        self._writer = writer
        token = auth.generate_sas(f"{self.hostname}/devices/{self.device_id}", self.key,
                                  int(time.time()) + 3600)
        writer.write(encode(Connect(self.device_id,
                                    f"{self.hostname}/{self.device_id}/?api-version={API_VERSION}",
                                    token.encode(), KEEPALIVE, True)))
        writer.write(encode(Subscribe(1, [(METHODS_FILTER, 0)])))
        await writer.drain()
        connack = await asyncio.wait_for(self._next(stream), timeout)
        if not isinstance(connack, Connack) or connack.return_code != CONNACK_ACCEPTED:
            raise LoadSimError(f"{self.device_id}: connection refused ({connack})")
        suback = await asyncio.wait_for(self._next(stream), timeout)
        if not isinstance(suback, Suback) or suback.return_codes[:1] != [0]:
            raise LoadSimError(f"{self.device_id}: method subscription refused ({suback})")
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._serve(stream)), loop.create_task(self._ping())]

    async def _serve(self, stream: asyncio.StreamReader) -> None:
        writer = self._writer
        if writer is None:
            return
        try:
            while True:
                packet = await self._next(stream)
                if not isinstance(packet, Publish):
                    continue
                if packet.qos == 1 and packet.packet_id:
                    writer.write(encode(Puback(packet.packet_id)))
                request = _parse_method_topic(packet.topic)
                if request is None:
                    continue
                name, rid = request
                try:
                    payload = json.loads(packet.payload) if packet.payload else None
                except ValueError:
                    payload = None
                body = json.dumps({"device": self.device_id, "method": name, "payload": payload})
                writer.write(encode(Publish(f"$iothub/methods/res/200/?$rid={rid}",
                                            body.encode())))
                self.answered += 1
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            return

    async def _ping(self) -> None:
        while self._writer is not None:
            await asyncio.sleep(KEEPALIVE / 2)
            self._writer.write(encode(Pingreq()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 2)
            except (OSError, asyncio.TimeoutError, ssl.SSLError):
                pass


class Fleet:
    """N simulated devices, connected with at most ``parallel`` TLS handshakes at a time."""

    def __init__(self, hub: HubLike, credentials: list[tuple[str, str]], parallel: int = 64
                 ) -> None:
        tls_buffers.shrink()  # the simulated side holds as many TLS connections as the hub
        open_files = tls_buffers.raise_fd_limit()
        if open_files < len(credentials) + 256:
            raise LoadSimError(f"{len(credentials)} connections need more open files than "
                               f"this process may have ({open_files})")
        ctx = ssl.create_default_context(cafile=str(hub.ca_path))
        self.devices = [SimDevice(d, k, hub.host, hub.mqtt_port, hub.hostname, ctx)
                        for d, k in credentials]
        self.parallel = max(1, parallel)

    async def __aenter__(self) -> "Fleet":
        gate = asyncio.Semaphore(self.parallel)

        async def one(dev: SimDevice) -> None:
            async with gate:
                await dev.connect()

        results = await asyncio.gather(*(one(d) for d in self.devices), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.close()
            raise LoadSimError(f"{len(errors)} of {len(self.devices)} devices failed to connect; "
                               f"first: {errors[0]!r}")
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        await asyncio.gather(*(d.close() for d in self.devices), return_exceptions=True)

    @property
    def answered(self) -> int:
        return sum(d.answered for d in self.devices)


def register_devices(client: HubClient, prefix: str, count: int) -> list[tuple[str, str]]:
    """Create ``{prefix}-00000`` ... devices, a bulk call per 100 (an existing one keeps its
    keys); return (id, primary key) pairs."""
    out = []
    for start in range(0, count, bulk.MAX_DEVICES):
        batch = [(f"{prefix}-{n:05d}", auth.new_key())
                 for n in range(start, min(count, start + bulk.MAX_DEVICES))]
        body = [{"id": device_id, "importMode": "create", "status": "enabled",
                 "authentication": {"type": "sas", "symmetricKey": {
                     "primaryKey": key, "secondaryKey": auth.new_key()}}}
                for device_id, key in batch]
        try:
            client.request("POST", "/devices", body)
        except HubRequestError as exc:
            if exc.status != 400:
                raise
            # some were there from an earlier run on the same hub: read the keys of all
            batch = [(device_id, client.get_device(device_id)["authentication"]["symmetricKey"]
                      ["primaryKey"]) for device_id, _ in batch]
        out.extend(batch)
    return out


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise LoadSimError(f"no VmRSS for pid {pid}")


def wait_job(client: HubClient, job_id: str, timeout: float, poll: float = 0.05
             ) -> dict[str, Any]:
    """Poll ``GET /jobs/v2/{id}`` until the job has ended; return it."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.request("GET", f"/jobs/v2/{job_id}")[2]
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        if time.monotonic() > deadline:
            raise LoadSimError(f"job {job_id} still {job['status']} after {timeout} s: "
                               f"{job['deviceJobStatistics']}")
        time.sleep(poll)


async def _method_job(hub: HubLike, devices: int, prefix: str, timeout: float,
                      parallel: int) -> dict[str, Any]:
    client = hub.client
    t0 = time.perf_counter()
    credentials = await asyncio.to_thread(register_devices, client, prefix, devices)
    t_registered = time.perf_counter()
    pid = getattr(hub, "pid", None)
    rss_before = rss_bytes(pid) if pid else None
    async with Fleet(hub, credentials, parallel) as fleet:
        t_connected = time.perf_counter()
        rss_connected = rss_bytes(pid) if pid else None
        job_id = f"{prefix}-job-{uuid.uuid4().hex[:8]}"
        body = {"jobId": job_id, "type": "scheduleDeviceMethod",
                "cloudToDeviceMethod": {"methodName": "ping", "payload": {"n": 1},
                                        "responseTimeoutInSeconds": 30},
                "queryCondition": f"STARTS_WITH(deviceId, '{prefix}-')",
                "maxExecutionTimeInSeconds": int(timeout)}
        start = time.perf_counter()
        await asyncio.to_thread(client.request, "PUT", f"/jobs/v2/{job_id}", body)
        job = await asyncio.to_thread(wait_job, client, job_id, timeout)
        elapsed = time.perf_counter() - start
        answered = fleet.answered
    stats = job["deviceJobStatistics"]
    if job["status"] != "completed" or stats["succeededCount"] != devices:
        raise LoadSimError(f"job {job_id} ended {job['status']} with {stats}")
    report: dict[str, Any] = {
        "devices": devices, "jobSeconds": elapsed, "registerSeconds": t_registered - t0,
        "connectSeconds": t_connected - t_registered, "answered": answered, "jobId": job_id}
    if rss_before is not None and rss_connected is not None:
        report["hubRssBeforeBytes"] = rss_before
        report["hubRssConnectedBytes"] = rss_connected
        report["hubRssPerConnectionBytes"] = (rss_connected - rss_before) // devices
    return report


def run_method_job_report(hub: HubLike, devices: int = 1000, prefix: str | None = None,
                          timeout: float = 300.0, parallel: int = 64) -> dict[str, Any]:
    """Like :func:`run_method_job`, returning every figure (register, connect, job seconds)."""
    prefix = prefix or f"sim{uuid.uuid4().hex[:6]}"
    return asyncio.run(_method_job(hub, devices, prefix, timeout, parallel))


def run_method_job(hub: HubLike, devices: int = 1000, prefix: str | None = None,
                   timeout: float = 300.0, parallel: int = 64) -> float:
    """Seconds for one method job to complete on ``devices`` connected simulated devices.

    ``hub`` is a started :class:`localhub.testing.HubProcess` (or anything with ``host``,
    ``mqtt_port``, ``hostname``, ``ca_path`` and ``client``). Call it from a thread without a
    running event loop. Raises :class:`LoadSimError` unless every device succeeded.
    """
    return float(run_method_job_report(hub, devices, prefix, timeout, parallel)["jobSeconds"])


def bench(devices: int = 1000, timeout: float = 300.0) -> dict[str, Any]:
    """Start a throwaway hub (own loopback address, temp folder), run the job, stop the hub."""
    from . import HubProcess  # local: testing starts subprocesses, not needed otherwise

    with tempfile.TemporaryDirectory(prefix="localhub-bench-") as tmp:
        with HubProcess(Path(tmp) / "hub") as hub:
            return run_method_job_report(hub, devices, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localhub.testing.loadsim",
                                     description="Time a direct-method job over N simulated "
                                                 "devices on a throwaway local hub.")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    try:
        report = bench(args.devices, args.timeout)
    except LoadSimError as exc:
        print(f"loadsim: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
