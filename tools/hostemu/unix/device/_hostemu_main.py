# The driver of one board life on MicroPython's unix port: connect the bridge, import the board
# modules (a board has them in ROM: they cost no heap there, so they are loaded before the
# baseline), make the board folder the root of the filesystem, then run the scripts as a board
# runs boot.py and main.py. Started as: micropython -X heapsize=N _hostemu_main.py SOCKET_PATH

import gc
import json
import sys

import _hostemu
import _hostemu_common

_hostemu.connect(sys.argv[1])
_run = json.loads(_hostemu.call("run", "config"))
_hostemu.ENV.update(_run["env"])
_name = None
for _name in _run["preimport"]:
    __import__(_name)

_rom = None
if _run["romfs"]:
    # The board's ROMFS partition, read before "/" becomes the board folder. A board maps it from
    # flash; here it is one block taken before the baseline, so device code's heap is as large.
    with open(_run["romfs"][0], "rb") as _f:
        _rom = _f.read(_run["romfs"][1])
    del _f

if _run["board_fs"]:
    import os
    import vfs

    # "/" is the board's flash, as on a board: absolute paths stay inside the board folder.
    vfs.umount("/")
    vfs.mount(vfs.VfsPosix(_run["board_fs"]), "/")
    os.chdir("/")
if _rom is not None:
    import vfs

    vfs.mount(vfs.VfsRom(_rom), "/rom")  # .mpy from here runs in place, as from a board's flash
sys.path.clear()
for _entry in _run["sys_path"]:
    sys.path.append(_entry)


def _main(items):
    import io

    scope = {"__name__": "__main__"}
    for item in items:
        try:
            if "code" in item:
                exec(item["code"], scope)
            else:
                scope["__file__"] = item["path"]
                execfile(item["path"], scope)
        except SystemExit as exc:
            return _hostemu_common.exit_status(exc), None
        except BaseException as exc:  # the board prints the traceback on its console
            buf = io.StringIO()
            sys.print_exception(exc, buf)
            # Without the driver's own frame: the board's traceback starts at device code.
            text = "\n".join(line for line in buf.getvalue().split("\n") if "_hostemu_main.py" not in line)
            print(text, end="")
            return 1, text
        _hostemu.probe("after " + item.get("path", "<code>"))
    return 0, None


_items = _run["scripts"]
del _run, _name, _rom
gc.collect()
_hostemu.probe("baseline")
_code, _tb = _main(_items)
_hostemu._send({"t": "exit", "s": _code, "tb": _tb})
sys.exit(_code)
