# The VM side of the hostemu bridge: calls into the Python parent, heap reports, and the driver
# that mounts the board's file system and runs the scripts.
#
# Calls cross into JavaScript (the `_vmjs` module of runner.mjs), which writes one JSON line to
# the parent and blocks until its answer. Arguments and results are ints, strs, floats or None:
# nothing is allocated on the VM heap for a call. Bytes never travel as Python objects: the JS
# side copies them straight out of / into the caller's buffer by address, so a device-side
# readinto() into a preallocated buffer costs no heap here either, as on a board.
#
# Adding a bridged service (e.g. `machine`): write a module in mpy_modules/ (or a folder passed as
# `module_dirs`) whose functions call `_hostemu.call("machine", "reset")`, and register a host
# object with an `op_reset(self)` method under the name "machine" (see hostemu/vm/README.md).

import gc
import sys
import _vmjs
import uctypes

import _hostemu_common as _common

_call = _vmjs.call
_call_out = _vmjs.call_out
_call_in = _vmjs.call_in
_status = _vmjs.status
addressof = uctypes.addressof


# Values the parent passed for this run (MicroPythonVM(env=...)).
ENV = {}


def _after_call():
    # Runs only when the JS side flagged something: an exception to raise or a heap probe the
    # parent asked for. The probe goes first so it sees the heap as the call left it.
    flags = _status()
    if flags & 2:
        probe(_vmjs.probe_label())
    if flags & 1:
        name = _vmjs.err_type()
        import json

        args = json.loads(_vmjs.err_args())
        raise _common.exception(name, args)


def call(service, op, a=None, b=None, c=None, d=None):
    """Call `op` of host service `service` with up to four int/str/float/None arguments."""
    result = _call(service, op, a, b, c, d)
    if _status():
        _after_call()
    return result


def call_out(service, op, addr, n, a=None, b=None):
    """Like call(), also sending the `n` bytes at address `addr` (see addressof())."""
    result = _call_out(service, op, addr, n, a, b)
    if _status():
        _after_call()
    return result


def call_in(service, op, addr, n, a=None, b=None):
    """Like call(); the host's reply bytes (at most `n`) are written at address `addr`."""
    result = _call_in(service, op, addr, n, a, b)
    if _status():
        _after_call()
    return result


def heap_total():
    # This port's heap grows on demand (MICROPY_GC_SPLIT_HEAP_AUTO) and gc.mem_free() counts the
    # 128 MiB it could still add; what is left is the size of the heap actually in use.
    return gc.mem_alloc() + gc.mem_free() - 134217728


def probe(label):
    """Collect, then report the live heap to the parent under `label`."""
    gc.collect()
    _vmjs.heap(label, gc.mem_alloc(), gc.mem_free(), 1)


def sample(label):
    """Report the heap as it is (garbage included), for peak tracking: no collection."""
    _vmjs.heap(label, gc.mem_alloc(), gc.mem_free(), 0)


def _traceback(exc):
    import io

    buf = io.StringIO()
    sys.print_exception(exc, buf)
    # Drop the driver's own frame (step() here): the board's traceback starts at device code.
    lines = buf.getvalue().split("\n")
    return "\n".join(line for line in lines if "/.hostemu/" not in line)


def _preimport(names):
    # On a board socket/ssl/select/time are built in and cost no heap when imported; here they
    # are Python modules. Importing them all before the baseline is taken keeps their cost out
    # of the figures measured for device code.
    for name in names:
        __import__(name)


# The run is driven as a series of runPython calls (runner.mjs calls step() until it says no
# more), because this port's gc.collect() cannot free what was allocated during the runPython
# call it runs in: the WebAssembly stack is out of its reach, so it keeps every object of the
# current call. A probe taken at the start of a call therefore sees the live heap of the one
# before it; a probe inside a long call (a script that loops) only gives an upper bound.
#
# Each script is one call; "after <script>" is probed at the start of the next call. A script may
# hand over a generator with steps(gen): each next(gen) is then its own call, and what it yields
# is probed at the start of the call after it: a str as that label, None as "step" (e.g. one
# poll() or one upload block), so the parent sees the live heap at every step.
_run = {}


def steps(gen):
    """Run `gen` step by step after the current script, one runPython call per next()."""
    _run["gen"] = gen


def setup():
    import json
    import os
    import vfs

    run = json.loads(_vmjs.config("run"))
    ENV.update(run.get("env") or {})
    _preimport(run["preimport"])
    vfs.umount("/.hostemu")
    sys.path.clear()
    for entry in run["sys_path"]:
        sys.path.append(entry)
    os.chdir("/")
    _run["items"] = run["scripts"]
    _run["index"] = 0
    _run["status"] = 0
    _run["tb"] = None
    _run["label"] = None
    _run["gen"] = None
    _run["scope"] = {"__name__": "__main__"}
    _vmjs.more(1)
    _run["label"] = "baseline"  # probed at the start of the first step, once setup's garbage is free


def _fail(exc):
    if isinstance(exc, SystemExit):
        _run["status"] = _common.exit_status(exc)
    else:  # the board prints the traceback on its console, and so do we
        _run["tb"] = _traceback(exc)
        print(_run["tb"], end="")
        _run["status"] = 1
    _run["gen"] = None
    _run["index"] = len(_run["items"])


def step():
    """One runPython call of the run: probe what the previous call left, then do the next thing."""
    label = _run["label"]
    _run["label"] = None
    if label is not None:
        probe(label)
    gen = _run["gen"]
    if gen is not None:
        try:
            got = next(gen)
            _run["label"] = "step" if got is None else got
        except StopIteration:
            _run["gen"] = None
            _run["label"] = "after steps"
        except BaseException as exc:
            _fail(exc)
        # This port's gc.collect() only marks a collection as due; it runs when the call returns.
        gc.collect()
        return
    items = _run["items"]
    index = _run["index"]
    if index >= len(items):
        _vmjs.more(0)
        _vmjs.exit(_run["status"], _run["tb"])
        return
    _run["index"] = index + 1
    item = items[index]
    name = item.get("path") or "<code>"
    scope = _run["scope"]
    _run["label"] = "after " + name
    try:
        if "code" in item:
            exec(item["code"], scope)
        else:
            scope["__file__"] = name
            execfile(name, scope)
    except BaseException as exc:
        _fail(exc)
    gc.collect()
