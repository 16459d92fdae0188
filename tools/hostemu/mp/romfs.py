"""The board's ROMFS partition (MicroPython 1.25+): flash that `.mpy` bytecode runs from in place,
written by `mpremote romfs deploy` through `vfs.rom_ioctl` and mounted at `/rom` at boot.

The partition is a file, `.hostemu/romfs0.img`, of the profile's `romfs_bytes`, erased (0xFF) in
4 KB sectors as SPI flash is; a board whose profile has no ROMFS has no partition, as a firmware
built without one has none. Every runtime reads the same file: the CPython runtime's `vfs` answers
mpremote's ioctls over it, the unix port mounts the image it holds with its real `vfs.VfsRom` at
every boot, as the firmware does, and mounts nothing when it holds none.
"""

from __future__ import annotations

from pathlib import Path

from mpremote.romfs import VfsRomWriter

from hostemu import context as _context

SECTOR = 4096  # SPI flash's erase unit on the ESP chips
MIN_WRITE = 4  # what the ESP ports answer to rom_ioctl(3): writes go in words
HEADER = VfsRomWriter.ROMFS_HEADER  # an image starts with it, then its length (extmod/vfs_rom.c)


class RomfsError(OSError):
    pass


def _board(board: _context.BoardContext | None) -> _context.BoardContext:
    return board if board is not None else _context.current()


def size(board: _context.BoardContext | None = None) -> int:
    """The partition's size in bytes; 0 when the board's firmware has no ROMFS partition."""
    return _board(board).profile.romfs_bytes


def path_for(fs_root: Path) -> Path:
    """The partition file of the board whose folder is `fs_root`."""
    return Path(fs_root) / _context.PRIVATE_DIR / "romfs0.img"


def path(board: _context.BoardContext | None = None) -> Path:
    return path_for(_board(board).fs_root)


def _file(board: _context.BoardContext | None) -> Path:
    length = size(board)
    if not length:
        raise RomfsError(19, "no ROMFS partition on this board")  # ENODEV
    target = path(board)
    if not target.exists() or target.stat().st_size != length:
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(b"\xff" * length)  # a new chip's flash reads as erased
    return target


def program(fs_root: Path, length: int, image_data: bytes) -> Path:
    """Erase a board's partition and write an image at its start, as `mpremote romfs deploy`
    leaves it, without a running board (benchmarks lay boards out this way)."""
    if len(image_data) > length:
        raise RomfsError(28, "the image does not fit the partition")  # ENOSPC
    target = path_for(fs_root)
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(image_data + b"\xff" * (length - len(image_data)))
    return target


def read(board: _context.BoardContext | None = None) -> bytes:
    return _file(board).read_bytes()


def erase(offset: int, length: int, board: _context.BoardContext | None = None) -> None:
    """Erase whole sectors from `offset` (a sector boundary) over at least `length` bytes."""
    target = _file(board)
    total = size(board)
    if offset % SECTOR or offset < 0 or length < 0 or offset + length > total:
        raise RomfsError(22, "erase outside the partition or off a sector boundary")  # EINVAL
    end = min(total, -(-(offset + length) // SECTOR) * SECTOR)
    with target.open("r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * (end - offset))


def write(offset: int, data: bytes, board: _context.BoardContext | None = None) -> None:
    """Program bytes: as on NOR flash, a write can only clear bits, so unerased flash is refused."""
    target = _file(board)
    if offset < 0 or offset + len(data) > size(board) or offset % MIN_WRITE:
        raise RomfsError(22, "write outside the partition or not word aligned")
    with target.open("r+b") as f:
        f.seek(offset)
        old = f.read(len(data))
        if any(o & n != n for o, n in zip(old, data)):
            raise RomfsError(5, "write to flash that was not erased")  # EIO
        f.seek(offset)
        f.write(data)


def image_length(data: bytes) -> int:
    """Bytes of the ROMFS image at the start of `data` (header and length included); 0 if none."""
    if not data.startswith(HEADER):
        return 0
    value, index = 0, len(HEADER)
    while index < len(data):
        byte = data[index]
        index += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return index + value if index + value <= len(data) else 0
    return 0
