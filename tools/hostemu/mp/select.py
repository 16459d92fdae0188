"""MicroPython's `select`: `poll()` objects over MicroPython-style socket objects.

A TLS socket with decrypted bytes already buffered is readable even if its host socket is quiet,
as mbedTLS's pending data makes it on the board.
"""

import select as _host_select

POLLIN = 0x0001
POLLOUT = 0x0004
POLLERR = 0x0008
POLLHUP = 0x0010


def _host(obj):
    return obj._host_socket()


class _Poll:
    def __init__(self):
        self._objects = {}

    def register(self, obj, eventmask=POLLIN | POLLOUT):
        self._objects[id(obj)] = (obj, eventmask)

    def unregister(self, obj):
        self._objects.pop(id(obj), None)

    def modify(self, obj, eventmask):
        if id(obj) not in self._objects:
            raise OSError(2)  # ENOENT
        self._objects[id(obj)] = (obj, eventmask)

    def poll(self, timeout=-1):
        ready = []
        host = _host_select.poll()
        by_fd = {}
        for obj, mask in self._objects.values():
            pending = getattr(obj, "_pending", None)
            if mask & POLLIN and pending is not None and pending() > 0:
                ready.append((obj, POLLIN))
                continue
            sock = _host(obj)
            if sock.fileno() < 0:
                ready.append((obj, POLLHUP))
                continue
            by_fd[sock.fileno()] = obj
            host.register(sock.fileno(), mask & (POLLIN | POLLOUT))
        if ready:
            timeout = 0
        events = host.poll(None if timeout is None or timeout < 0 else timeout)
        for fd, event in events:
            ready.append((by_fd[fd], event & (POLLIN | POLLOUT | POLLERR | POLLHUP)))
        return ready

    def ipoll(self, timeout=-1, flags=0):
        return iter(self.poll(timeout))


def poll():
    return _Poll()


def select(rlist, wlist, xlist, timeout=None):
    p = _Poll()
    for obj in rlist:
        p.register(obj, POLLIN)
    for obj in wlist:
        p.register(obj, POLLOUT)
    events = p.poll(-1 if timeout is None else int(timeout * 1000))
    readable = [obj for obj, ev in events if ev & (POLLIN | POLLHUP | POLLERR)]
    writable = [obj for obj, ev in events if ev & POLLOUT]
    return readable, writable, []
