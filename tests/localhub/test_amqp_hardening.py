"""The AMQP listener under idle and unauthenticated connections, as the MQTT and HTTPS ones:
at most ``--max-unauthenticated`` wait for a CBS token (the longest waiting goes for a newcomer),
each has ``--amqp-auth-timeout`` seconds to put one, and real clients are served meanwhile."""

from __future__ import annotations

import socket
import ssl
import time

from azure.eventhub import EventHubConsumerClient
from localhub.endpoints.amqp_sasl import AMQP_HEADER
from localhub.testing import HubProcess


def _amqp_tls(hub: HubProcess) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(hub.ca_path))
    return ctx.wrap_socket(socket.create_connection((hub.host, hub.amqp_port), timeout=10),
                           server_hostname=hub.host)


def _closed_within(sock: ssl.SSLSocket, seconds: float) -> bool:
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            continue
        except (ConnectionError, ssl.SSLError):
            return True
    return False


def test_idle_and_tokenless_amqp_connections_are_capped_and_timed_out(tmp_path) -> None:
    with HubProcess(tmp_path / "hub", serve_args=("--max-unauthenticated", "4",
                                                  "--amqp-auth-timeout", "3")) as hub:
        idle = [_amqp_tls(hub) for _ in range(4)]
        idle[1].sendall(AMQP_HEADER)  # an AMQP client that never puts a token counts the same
        time.sleep(0.3)
        newcomer = _amqp_tls(hub)
        assert _closed_within(idle[0], 2), "the longest waiting goes for the newcomer"
        # a real client authenticates within the cap and is served, pushing out the next oldest
        consumer = EventHubConsumerClient.from_connection_string(
            hub.eventhub_connection_string(), consumer_group="$Default",
            connection_verify=str(hub.ca_path), retry_total=0)
        try:
            assert consumer.get_eventhub_properties()["partition_ids"] == ["0", "1", "2", "3"]
        finally:
            consumer.close()
        assert _closed_within(idle[1], 2)
        started = time.monotonic()
        assert all(_closed_within(sock, 6) for sock in (*idle[2:], newcomer)), "no token in 3 s"
        assert time.monotonic() - started < 6
        log = hub.log_path.read_text()
        assert "AMQP connections turned away" in log
        assert "AMQP connections closed for putting no token in 3 s" in log
        for sock in (*idle, newcomer):
            sock.close()


def test_the_hub_keeps_an_idle_client_alive_with_heartbeats_inside_its_idle_timeout(module_hub: HubProcess) -> None:
    """A client that asks for traffic every 2 s (Proton's heartbeat, its idle timeout) and sends
    nothing itself stays connected for 6 s: the hub's timers send heartbeats in time."""
    from proton import SSLDomain
    from proton.handlers import MessagingHandler
    from proton.reactor import Container

    class Idle(MessagingHandler):
        def __init__(self) -> None:
            super().__init__()
            self.error = None
            self.open_after_6_s = False

        def on_start(self, event) -> None:
            domain = SSLDomain(SSLDomain.MODE_CLIENT)
            domain.set_trusted_ca_db(str(module_hub.ca_path))
            domain.set_peer_authentication(SSLDomain.VERIFY_PEER)
            self.conn = event.container.connect(f"amqps://{module_hub.host}:{module_hub.amqp_port}",
                                                ssl_domain=domain, sasl_enabled=False, heartbeat=2,
                                                reconnect=False)
            event.container.schedule(6, self)

        def on_timer_task(self, event) -> None:
            self.open_after_6_s = self.error is None and not self.conn.state & self.conn.REMOTE_CLOSED
            self.conn.close()

        def on_transport_error(self, event) -> None:
            self.error = event.transport.condition

    idle = Idle()
    Container(idle).run()
    assert idle.error is None and idle.open_after_6_s
