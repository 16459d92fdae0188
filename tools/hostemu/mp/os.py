"""MicroPython's `os` over the board's folder: `/` is the board folder, and the host-emulation
layer's own `.hostemu/` inside it is not shown."""

import os as _host_os

from hostemu import context as _context
from hostemu.context import PRIVATE_DIR as _PRIVATE

sep = "/"


def _path(path) -> str:
    """A board path, absolute or relative to the current directory, as a host path."""
    return board_path(path)


def board_path(path) -> str:
    path = str(path)
    root = str(_context.current().fs_root)
    if path.startswith("/"):
        return root + path if path != "/" else root
    return path


def _visible(names):
    return [name for name in names if name != _PRIVATE]


def listdir(dir="."):
    return sorted(_visible(_host_os.listdir(_path(dir or "."))))


def ilistdir(dir="."):
    for entry in _host_os.scandir(_path(dir or ".")):
        if entry.name == _PRIVATE:
            continue
        kind = 0x4000 if entry.is_dir() else 0x8000
        yield (entry.name, kind, 0, 0 if entry.is_dir() else entry.stat().st_size)


def mkdir(path):
    _host_os.mkdir(_path(path))


def rmdir(path):
    _host_os.rmdir(_path(path))


def remove(path):
    _host_os.remove(_path(path))


unlink = remove


def rename(old, new):
    _host_os.replace(_path(old), _path(new))


def stat(path):
    st = _host_os.stat(_path(path))
    mode = 0x4000 if (st.st_mode & 0o170000) == 0o040000 else 0x8000
    mtime = int(st.st_mtime) - _context.current().epoch_offset
    return (mode, 0, 0, 0, 0, 0, st.st_size, mtime, mtime, mtime)


def statvfs(path="/"):
    board = _context.current()
    block = 4096
    total = board.profile.flash_bytes // 2 // block
    used = 0
    for folder, _dirs, files in _host_os.walk(board.fs_root):
        if _PRIVATE in folder:
            continue
        for name in files:
            used += (_host_os.path.getsize(_host_os.path.join(folder, name)) + block - 1) // block
    free = max(0, total - used)
    return (block, block, total, free, free, 0, 0, 0, 0, 255)


def getcwd():
    root = str(_context.current().fs_root)
    cwd = _host_os.getcwd()
    return cwd[len(root):] or "/" if cwd.startswith(root) else "/"


def chdir(path):
    _host_os.chdir(_path(path))


def sync():
    return None


def urandom(n):
    return _host_os.urandom(n)


def dupterm(stream_object=None, index=0):
    return None


class _Uname(tuple):
    sysname = property(lambda self: self[0])
    nodename = property(lambda self: self[1])
    release = property(lambda self: self[2])
    version = property(lambda self: self[3])
    machine = property(lambda self: self[4])


def uname():
    profile = _context.current().profile
    return _Uname((profile.chip, profile.chip, "1.27.0", "v1.27.0 on hostemu", profile.description))
