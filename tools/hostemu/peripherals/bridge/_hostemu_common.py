# What the device side of both hostemu bridges (the WebAssembly VM's, the unix port's) shares:
# the exceptions a host service may raise in device code, by name, and how a script's SystemExit
# becomes the run's status.

EXCEPTIONS = {
    "OSError": OSError,
    "ValueError": ValueError,
    "TypeError": TypeError,
    "RuntimeError": RuntimeError,
    "NotImplementedError": NotImplementedError,
    "MemoryError": MemoryError,
    "KeyError": KeyError,
    "IndexError": IndexError,
}


def exception(name, args):
    return EXCEPTIONS.get(name, RuntimeError)(*args)


def exit_status(exc):
    code = exc.value if hasattr(exc, "value") else (exc.args[0] if exc.args else None)
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code)
    return 1
