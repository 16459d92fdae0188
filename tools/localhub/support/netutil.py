"""Small socket checks shared by the hub (Azurite's port) and its test helper (hub addresses)."""

from __future__ import annotations

import socket


def port_free(host: str, port: int) -> bool:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR as the servers use it: a TIME_WAIT left by an earlier run does not block.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()
