"""The host side of the emulated sockets: a write the peer's TLS shutdown cuts short."""

from __future__ import annotations

import errno
import socket
import ssl

import pytest

from hostemu.peripherals.netsvc import SOCK_STREAM, NetService, _Conn
from hostemu.peripherals.protocol import DeviceError


class _ClosedUnderTheWrite:
    """A TLS stream whose peer ended the session as the write went out (seen in the e2e relay
    test about one run in three: a race, so it is played here rather than waited for)."""

    def send(self, data: bytes) -> int:
        raise ssl.SSLEOFError(8, "EOF occurred in violation of protocol")

    def close(self) -> None:
        pass


def test_a_write_cut_by_the_peers_tls_shutdown_is_an_oserror_for_the_device() -> None:
    service = NetService()
    plain = socket.socket()
    try:
        conn = _Conn(SOCK_STREAM, plain, timeout=5, tls=_ClosedUnderTheWrite())  # type: ignore[arg-type]
        service._conns[7] = conn
        with pytest.raises(DeviceError) as err:
            service.op_write(7, data=b"a block")
        assert err.value.args[:2] == ("OSError", errno.ECONNRESET)
    finally:
        plain.close()
