# MicroPython's `socket` (ESP32/ESP8266 flavour) for the hostemu VM: the real socket lives in the
# Python parent, this object holds its handle.
#
# Stream semantics follow py/stream.c (mp_stream_rw): on a blocking socket read(n)/readinto()
# loop until n bytes or EOF and write() until everything is written; on a non-blocking socket
# they return what one attempt gave, None when nothing was available, and b''/0 at EOF. recv()
# and send() make one attempt and raise OSError(EAGAIN) when they would block. The host answers
# -1 for "would block" so that polling costs no exception (and no heap) on the device side.

from micropython import const
import _hostemu

_call = _hostemu.call
_call_in = _hostemu.call_in
_call_out = _hostemu.call_out
_addressof = _hostemu.addressof

AF_INET = const(2)
AF_INET6 = const(10)
SOCK_STREAM = const(1)
SOCK_DGRAM = const(2)
SOCK_RAW = const(3)
IPPROTO_IP = const(0)
IPPROTO_TCP = const(6)
IPPROTO_UDP = const(17)
SOL_SOCKET = const(4095)
SO_REUSEADDR = const(4)
SO_BROADCAST = const(32)
TCP_NODELAY = const(1)
IP_ADD_MEMBERSHIP = const(3)

_EAGAIN = const(11)
_SVC = "socket"


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    ip = _call(_SVC, "getaddrinfo", host, port)
    if not type:
        type = SOCK_STREAM
    return [(AF_INET, type, proto, "", (ip, port))]


def _nbytes(buf):
    # write() accepts any buffer; a str is written as its UTF-8 bytes.
    if isinstance(buf, str):
        buf = buf.encode()
    return buf


class socket:
    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=IPPROTO_TCP):
        self._h = _call(_SVC, "open", af, type, proto)

    # -- configuration --------------------------------------------------------------------

    def settimeout(self, value):
        _call(_SVC, "settimeout", self._h, value)

    def setblocking(self, flag):
        _call(_SVC, "settimeout", self._h, None if flag else 0)

    def setsockopt(self, level, option, value):
        # TCP_NODELAY is the one option whose absence a client can feel (Nagle + delayed ACK);
        # the others a client sets change nothing the host emulates.
        if level == IPPROTO_TCP and option == TCP_NODELAY:
            _call(_SVC, "nodelay", self._handle(), 1 if value else 0)

    def makefile(self, mode="rb", buffering=0):
        return self

    def fileno(self):
        return self._h

    def close(self):
        if self._h is not None:
            h = self._h
            self._h = None
            _call(_SVC, "close", h)

    def _handle(self):
        if self._h is None:
            raise OSError(9)  # EBADF
        return self._h

    # -- connection -----------------------------------------------------------------------

    def connect(self, address):
        _call(_SVC, "connect", self._handle(), address[0], address[1])

    def bind(self, address):
        _call(_SVC, "bind", self._handle(), address[0], address[1])

    def listen(self, backlog=2):
        raise OSError(95)  # EOPNOTSUPP: the VM bridges client sockets only

    def accept(self):
        raise OSError(95)

    # -- one attempt each ---------------------------------------------------------------------

    def _read_once(self, addr, n):
        # > 0 bytes read, 0 at EOF, -1 would block; errors raise OSError.
        return _call_in(_SVC, "read", addr, n, self._handle())

    def _write_once(self, addr, n):
        return _call_out(_SVC, "write", addr, n, self._handle())

    def _rw_in(self, addr, size):
        done = 0
        while size > 0:
            got = self._read_once(addr + done, size)
            if got == 0:
                break
            if got < 0:
                return done if done else None
            done += got
            size -= got
        return done

    # -- stream methods -------------------------------------------------------------------------

    def readinto(self, buf, nbytes=None):
        size = len(buf)
        if nbytes is not None and nbytes < size:
            size = nbytes
        if size <= 0:
            return 0
        return self._rw_in(_addressof(buf), size)

    def read(self, size=-1):
        if size is None or size < 0:
            return self._readall()
        if size == 0:
            return b""
        buf = bytearray(size)
        got = self._rw_in(_addressof(buf), size)
        if got is None:
            return None
        return bytes(buf) if got == size else bytes(memoryview(buf)[:got])

    def _readall(self):
        chunks = []
        while True:
            chunk = self.read(256)
            if chunk is None:
                if chunks:
                    break
                return None
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def readline(self):
        line = bytearray()
        one = bytearray(1)
        addr = _addressof(one)
        while True:
            got = self._read_once(addr, 1)
            if got < 0:
                if not line:
                    return None
                break
            if got == 0:
                break
            line.append(one[0])
            if one[0] == 10:
                break
        return bytes(line)

    def write(self, buf, a=None, b=None):
        buf = _nbytes(buf)
        off = 0
        size = len(buf)
        if b is not None:
            off = min(a, size)
            size = min(size - off, b)
        elif a is not None:
            size = min(size, a)
        if size <= 0:
            return 0
        addr = _addressof(buf) + off
        done = 0
        while size > 0:
            n = self._write_once(addr + done, size)
            if n < 0:
                return done if done else None
            if n == 0:
                break
            done += n
            size -= n
        return done

    def recv(self, bufsize):
        buf = bytearray(bufsize)
        got = self._read_once(_addressof(buf), bufsize) if bufsize > 0 else 0
        if got < 0:
            raise OSError(_EAGAIN)
        return bytes(buf) if got == bufsize else bytes(memoryview(buf)[:got])

    def send(self, data):
        data = _nbytes(data)
        if not data:
            return 0
        n = self._write_once(_addressof(data), len(data))
        if n < 0:
            raise OSError(_EAGAIN)
        return n

    def sendall(self, data):
        data = _nbytes(data)
        done = self.write(data)
        if done is None or done < len(data):
            raise OSError(_EAGAIN)

    # -- datagrams ------------------------------------------------------------------------------

    def sendto(self, data, address):
        data = _nbytes(data)
        return _call_out(_SVC, "sendto", _addressof(data), len(data), self._handle(),
                         address[0] + ":" + str(address[1]))

    def recvfrom(self, bufsize):
        buf = bytearray(bufsize)
        got = self._read_once(_addressof(buf), bufsize)
        if got < 0:
            raise OSError(_EAGAIN)
        peer = _call(_SVC, "peer", self._h)
        colon = peer.rfind(":")
        return bytes(memoryview(buf)[:got]), (peer[:colon], int(peer[colon + 1:]))


def inet_ntop(af, packed):
    return ".".join(str(b) for b in packed)


def inet_pton(af, text):
    return bytes(int(part) for part in text.split("."))
