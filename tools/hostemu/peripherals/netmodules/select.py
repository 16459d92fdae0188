# MicroPython's `select` for the hostemu VM. Bridged sockets (and TLS sockets, whose decrypted
# bytes count as readable) are polled by the Python parent; any other stream falls back to the
# interpreter's own poll.
#
# poll() returns a new list of (obj, event) tuples; ipoll() yields one reused 2-item list per
# ready object, as MicroPython's ipoll() reuses its tuple: copy it before keeping it. With
# flags=1 (one-shot) an object reported once is not reported again until modify() re-arms it.

from micropython import const
import _hostemu
import uselect as _native

POLLIN = _native.POLLIN
POLLOUT = _native.POLLOUT
POLLERR = _native.POLLERR
POLLHUP = _native.POLLHUP

_call = _hostemu.call
_SVC = "socket"
_SLICE_MS = const(10)


class poll:
    def __init__(self):
        self._id = _call(_SVC, "poll_new")
        self._objs = {}  # host handle -> registered object
        self._native = None
        self._native_n = 0
        self._item = [None, 0]

    def _release(self):
        _call(_SVC, "poll_free", self._id)

    def register(self, obj, eventmask=POLLIN | POLLOUT):
        h = getattr(obj, "_h", None)
        if h is None or not hasattr(obj, "_read_once"):
            if self._native is None:
                self._native = _native.poll()
            self._native.register(obj, eventmask)
            self._native_n += 1
            return
        self._objs[h] = obj
        _call(_SVC, "poll_set", self._id, h, eventmask)

    def modify(self, obj, eventmask):
        h = getattr(obj, "_h", None)
        if h is not None and h in self._objs:
            _call(_SVC, "poll_set", self._id, h, eventmask)
        elif self._native is not None:
            self._native.modify(obj, eventmask)
        else:
            raise OSError(2)  # ENOENT, as MicroPython raises for an unregistered object

    def unregister(self, obj):
        h = getattr(obj, "_h", None)
        if h is not None and h in self._objs:
            del self._objs[h]
            _call(_SVC, "poll_del", self._id, h)
        elif self._native is not None:
            try:
                self._native.unregister(obj)
                self._native_n -= 1
            except (KeyError, OSError):
                pass

    def _wait(self, timeout, flags):
        # Returns how many bridged objects are ready; native ones are checked in slices when any
        # are registered.
        if not self._native_n:
            return _call(_SVC, "poll_wait", self._id, -1 if timeout is None else timeout, flags)
        waited = 0
        while True:
            step = _SLICE_MS if timeout is None or timeout < 0 else min(_SLICE_MS, timeout - waited)
            n = _call(_SVC, "poll_wait", self._id, max(step, 0), flags)
            if n or self._native.poll(0):
                return n
            waited += step
            if timeout is not None and 0 <= timeout <= waited:
                return 0

    def _native_ready(self):
        if not self._native_n:
            return ()
        return self._native.poll(0)

    def poll(self, timeout=-1):
        n = self._wait(timeout, 0)
        ready = []
        for i in range(n):
            packed = _call(_SVC, "poll_get", self._id, i)
            ready.append((self._objs[packed >> 8], packed & 255))
        for item in self._native_ready():
            ready.append(item)
        return ready

    def ipoll(self, timeout=-1, flags=0):
        n = self._wait(timeout, flags)
        item = self._item
        for i in range(n):
            packed = _call(_SVC, "poll_get", self._id, i)
            item[0] = self._objs[packed >> 8]
            item[1] = packed & 255
            yield item
        for native in self._native_ready():
            yield native


def select(rlist, wlist, xlist, timeout=None):
    p = poll()
    for obj in rlist:
        p.register(obj, POLLIN)
    for obj in wlist:
        mask = POLLOUT | (POLLIN if obj in rlist else 0)
        p.register(obj, mask)
    ms = -1 if timeout is None else int(timeout * 1000)
    r = []
    w = []
    x = []
    for obj, ev in p.poll(ms):
        if ev & (POLLIN | POLLHUP | POLLERR) and obj in rlist:
            r.append(obj)
        if ev & POLLOUT and obj in wlist:
            w.append(obj)
        if ev & POLLERR and obj in xlist:
            x.append(obj)
    p._release()
    return r, w, x
