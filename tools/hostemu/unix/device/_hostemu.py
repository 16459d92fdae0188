# The device side of the hostemu bridge on MicroPython's unix port: calls from the board modules
# (machine, network, ntptime, esp, esp32) to the Python parent, and heap reports.
#
# Only the board's peripherals cross this bridge. socket, ssl, select and time are the unix
# port's own (real sockets, mbedTLS), so nothing on the network path is emulated.
#
# One JSON line per call over an AF_UNIX stream socket to the parent, one JSON line back; the
# frames are those of the WebAssembly VM's bridge (hostemu/peripherals/protocol.py), so one set of
# host services answers both. The same API as the VM's _hostemu: call / call_in / call_out take a
# buffer address (addressof) and a length, and a reply's bytes are written straight to it.

import gc
import json
import socket
import struct
import uctypes
from binascii import a2b_base64, b2a_base64

import _hostemu_common as _common

addressof = uctypes.addressof

# Values the parent passed for this run (MicroPythonUnix(env=...)).
ENV = {}

_link = [None]


def connect(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(struct.pack("H", socket.AF_UNIX) + path.encode() + b"\0")
    _link[0] = sock


def _send(frame):
    sock = _link[0]
    sock.write(json.dumps(frame))
    sock.write(b"\n")


# True while the heap is filled on the host's request: automatic collection is off until the
# next bridge call, so the device code's next allocation fails for real.
_exhausted = [False]


def _exhaust():
    """Fill every free block with garbage, collection off: a real MemoryError at device code's
    next allocation. Until the next bridge call turns collection back on, only device code's own
    gc.collect() frees it: harsher than a board, whose automatic collection would also free it
    once the failed frames are unwound."""
    gc.collect()
    gc.disable()
    _exhausted[0] = True
    size = 4096
    while size:
        try:
            while True:
                bytearray(size)
        except MemoryError:
            size >>= 1


def _exchange(frame):
    if _exhausted[0]:
        _exhausted[0] = False
        gc.enable()
    _send(frame)
    line = _link[0].readline()
    if not line:
        raise RuntimeError("hostemu bridge: the host went away")
    reply = json.loads(line)
    label = reply.get("p")
    if label is not None:
        probe(label)
    err = reply.get("e")
    if err is not None:
        raise _common.exception(err[0], err[1])
    if reply.get("x"):
        _exhaust()
    return reply


def _args(items):
    n = len(items)
    while n and items[n - 1] is None:
        n -= 1
    return list(items[:n])


def call(service, op, a=None, b=None, c=None, d=None):
    """Call `op` of host service `service` with up to four int/str/float/None arguments."""
    return _exchange({"t": "call", "s": service, "o": op, "a": _args((a, b, c, d))}).get("r")


def call_out(service, op, addr, n, a=None, b=None):
    """Like call(), also sending the `n` bytes at address `addr` (see addressof())."""
    data = b2a_base64(uctypes.bytearray_at(addr, n)).strip().decode()
    return _exchange({"t": "call", "s": service, "o": op, "a": _args((a, b)), "b": data}).get("r")


def call_in(service, op, addr, n, a=None, b=None):
    """Like call(); the host's reply bytes (at most `n`) are written at address `addr`."""
    reply = _exchange({"t": "call", "s": service, "o": op, "a": _args((a, b)), "n": n})
    data = reply.get("b")
    if data:
        raw = a2b_base64(data)
        if len(raw) > n:
            raise RuntimeError("hostemu bridge: host sent too many bytes")
        uctypes.bytearray_at(addr, len(raw))[:] = raw
    return reply.get("r")


def rtc_changed():
    """The board's RTC was set (ntptime, machine.RTC): time() follows it from now on."""
    import time

    time._sync()


def probe(label):
    """Collect, then report the live heap to the parent under `label`."""
    gc.collect()
    _send({"t": "heap", "l": label, "a": gc.mem_alloc(), "f": gc.mem_free(), "c": 1})


def sample(label):
    """Report the heap as it is (garbage included): no collection."""
    _send({"t": "heap", "l": label, "a": gc.mem_alloc(), "f": gc.mem_free(), "c": 0})


def steps(gen):
    """Run `gen` to its end, probing the live heap at each yield: a str labels the probe, None
    is "step". (The VM needs each step to be its own call to free garbage; this port collects
    inside a call, so the same device scripts simply run through here.)"""
    for got in gen:
        probe("step" if got is None else got)
    probe("after steps")
