"""Helpers the end-to-end tests share (host side)."""

from __future__ import annotations

import re
import socket
import struct
import threading
from pathlib import Path

from hostemu.testing import BoardProcess
from localhub.testing import HubProcess


def touch(board: BoardProcess, name: str) -> None:
    """Raise a flag the device script polls for (see e2e_dev.flag)."""
    (board.fs_root / name).write_text("")


def hub_sessions(hub: HubProcess, device_id: str) -> list[tuple[str, str]]:
    """(peer, reason) of every MQTT connection of `device_id` the hub closed, from its log."""
    text = Path(hub.log_path).read_text(errors="replace")
    return re.findall(r"closing " + re.escape(device_id) + r" \(([^)]*)\): (.*)", text)


class DroppingRelay:
    """A TCP relay on 127.0.0.1 in front of one server that cuts the first `drop` connections
    once the client has sent `after` bytes through them (their rest is never forwarded).

    TLS runs end to end through it (the device still verifies the server's certificate by the
    server's name), so what the device meets is a real network failure in the middle of a
    request: its bytes stop, the connection is reset.
    """

    def __init__(self, target: tuple[str, int], drop: int = 1, after: int = 3000) -> None:
        self.target = target
        self.drop = drop
        self.after = after
        self.connections = 0
        self.dropped = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = self._listener.getsockname()
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            cut = self.after if self.connections <= self.drop else None
            threading.Thread(target=self._serve, args=(client, cut), daemon=True).start()

    def _serve(self, client: socket.socket, cut: int | None) -> None:
        try:
            server = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        done = threading.Event()

        def pump(src: socket.socket, dst: socket.socket, limit: int | None) -> None:
            sent = 0
            try:
                while not done.is_set():
                    data = src.recv(65536)
                    if not data:
                        break
                    if limit is not None and sent + len(data) > limit:
                        dst.sendall(data[: limit - sent])
                        self.dropped += 1
                        break
                    dst.sendall(data)
                    sent += len(data)
            except OSError:
                pass
            finally:
                done.set()
                for sock in (client, server):
                    try:
                        # RST, not FIN: the peer sees a reset connection, as when a link fails.
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        sock.close()
                    except OSError:
                        pass

        threading.Thread(target=pump, args=(server, client, None), daemon=True).start()
        pump(client, server, cut)

    def close(self) -> None:
        self._closing = True
        self._listener.close()
