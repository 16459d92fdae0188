"""MicroPython's `vfs` on the CPython runtime: what `mpremote romfs` asks of a board.

`rom_ioctl` is the ESP8266 port's (ports/esp8266/vfs_rom_ioctl.c, MicroPython 1.25+, the
FLASH_2M_ROMFS variant) over the board's partition (`hostemu.mp.romfs`), quirks included, since
mpremote is written against them: 1 answers 1 whatever the partition holds; 2 the partition as a
memoryview (its id ignored); 3 only in its three-argument form, erasing the first `length` bytes
of the partition and answering the smallest write (4); 4 writes at an offset, rounded up to words;
5 and 6 are not implemented (-EINVAL). A firmware without ROMFS has no `rom_ioctl` at all.
CPython cannot run `.mpy`, so nothing is mounted here: the unix runtime mounts the image.
"""

import errno as _errno

from hostemu.mp import romfs as _romfs

_GET_NUMBER_OF_SEGMENTS = 1
_GET_SEGMENT = 2
_WRITE_PREPARE = 3
_WRITE = 4


def _rom_ioctl(op, *args):
    if op == _GET_NUMBER_OF_SEGMENTS:
        return 1
    if op == _GET_SEGMENT:
        return memoryview(_romfs.read())
    try:
        if op == _WRITE_PREPARE:
            _romfs.erase(0, args[1])  # args[1]: the length, even when four arguments were given
            return _romfs.MIN_WRITE
        if op == _WRITE:
            data = bytes(args[2])
            _romfs.write(args[1], data + b"\x00" * (-len(data) % _romfs.MIN_WRITE))
            return 0
    except _romfs.RomfsError as exc:
        return -exc.errno
    return -_errno.EINVAL


def __getattr__(name):
    if name == "rom_ioctl" and _romfs.size():
        return _rom_ioctl
    raise AttributeError(name)


def mount(fs, mount_point, *, readonly=False):
    raise OSError(_errno.EPERM, "the CPython runtime cannot run .mpy from a mounted image")


def umount(mount_point):
    raise OSError(_errno.EINVAL)  # nothing is mounted but the board folder
