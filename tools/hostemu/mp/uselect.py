"""The interpreter's own `select`, as the shared device-side `select` (peripherals/netmodules)
imports it under the name `uselect`, for streams that are not bridged sockets (rare on a board):
any object with a fileno(), polled by the host."""

import select as _host_select

POLLIN = _host_select.POLLIN
POLLOUT = _host_select.POLLOUT
POLLERR = _host_select.POLLERR
POLLHUP = _host_select.POLLHUP


class poll:
    def __init__(self):
        self._poll = _host_select.poll()
        self._objects = {}

    def register(self, obj, eventmask=POLLIN | POLLOUT):
        self._objects[obj.fileno()] = obj
        self._poll.register(obj.fileno(), eventmask)

    def modify(self, obj, eventmask):
        self._poll.modify(obj.fileno(), eventmask)

    def unregister(self, obj):
        self._objects.pop(obj.fileno(), None)
        self._poll.unregister(obj.fileno())

    def poll(self, timeout=-1):
        return [(self._objects[fd], events) for fd, events in self._poll.poll(None if timeout < 0 else timeout)]
