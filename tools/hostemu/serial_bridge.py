"""The board's USB-serial port as a TCP port: what `mpremote connect socket://HOST:PORT` reaches.

One client at a time, as a serial port has. The board processes come and go with resets; the port
stays, and bytes sent while the next board boots are held for it, as a UART's FIFO would.
"""

from __future__ import annotations

import socket
import sys
import threading
from typing import IO


class SerialBridge:
    def __init__(self, host: str, port: int) -> None:
        self._listener = socket.create_server((host, port), reuse_port=False)
        self.port = self._listener.getsockname()[1]
        self._client: socket.socket | None = None
        self._board_stdin: IO[bytes] | None = None
        self._held = bytearray()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="hostemu-serial", daemon=True).start()

    # --- the board side ---------------------------------------------------------------------
    def attach(self, stdin: IO[bytes], stdout: IO[bytes]) -> threading.Thread:
        """Connect a new board process; returns the thread relaying its output (ends with it)."""
        with self._lock:
            self._board_stdin = stdin
            if self._held:
                self._send_to_board(bytes(self._held))
                self._held.clear()
        relay = threading.Thread(target=self._relay_output, args=(stdout,), name="hostemu-console", daemon=True)
        relay.start()
        return relay

    def detach(self) -> None:
        with self._lock:
            self._board_stdin = None

    def _send_to_board(self, data: bytes) -> None:
        assert self._board_stdin is not None
        try:
            self._board_stdin.write(data)
            self._board_stdin.flush()
        except (BrokenPipeError, ValueError):
            self._board_stdin = None
            self._held += data

    def _relay_output(self, stdout: IO[bytes]) -> None:
        while True:
            data = stdout.read1(4096) if hasattr(stdout, "read1") else stdout.read(4096)
            if not data:
                return
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            client = self._client
            if client is not None:
                try:
                    client.sendall(data)
                except OSError:
                    pass

    # --- the host side ----------------------------------------------------------------------
    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            # A console trades many tiny packets both ways; Nagle's delay would cost 40 ms each.
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            previous, self._client = self._client, client
            if previous is not None:
                previous.close()
            threading.Thread(target=self._receive, args=(client,), daemon=True).start()

    def _receive(self, client: socket.socket) -> None:
        while True:
            try:
                data = client.recv(4096)
                # mpremote writes small pieces back to back; its Nagle algorithm holds each one until
                # the last is acknowledged, so acknowledge at once rather than after Linux's 40 ms.
                if hasattr(socket, "TCP_QUICKACK"):
                    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except OSError:
                data = b""
            if not data:
                if self._client is client:
                    self._client = None
                client.close()
                return
            with self._lock:
                if self._board_stdin is None:
                    self._held += data
                else:
                    self._send_to_board(data)

    def close(self) -> None:
        self._listener.close()
        if self._client is not None:
            self._client.close()
