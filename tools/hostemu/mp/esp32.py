"""MicroPython's `esp32` module: OTA partitions, NVS and the on-chip temperature sensor.

Partitions are files in `.hostemu/partitions/`, laid out as ESP32_GENERIC-OTA lays them out
(two app slots); `set_boot()` picks the slot the next reset runs from. Boards without the `ota`
feature in their profile have no OTA partitions, as MicroPython's plain images do not.
"""

import os as _os

from hostemu import context as _context

_BLOCK = 4096
_APP_SLOT_BYTES = 0x1F0000
_LAYOUT = (
    # (type, subtype, address, size, label)
    (0, 0x10, 0x010000, _APP_SLOT_BYTES, "ota_0"),
    (0, 0x11, 0x200000, _APP_SLOT_BYTES, "ota_1"),
)

HEAP_DATA = 4
HEAP_EXEC = 1
WAKEUP_ALL_LOW = False
WAKEUP_ANY_HIGH = True


def _board():
    return _context.current()


def _require_chip(*chips):
    if _board().profile.chip not in chips:
        raise AttributeError("this function is not available on " + _board().profile.chip)


def raw_temperature() -> int:
    """ESP32 only: degrees Fahrenheit from the uncalibrated sensor."""
    _require_chip("esp32")
    return 128 + int.from_bytes(_os.urandom(1), "little") % 4


def mcu_temperature() -> float:
    """ESP32-S3/C3: degrees Celsius."""
    _require_chip("esp32s3", "esp32c3")
    return 41.0 + (int.from_bytes(_os.urandom(1), "little") % 20) / 10


def idf_heap_info(capabilities):
    heap = _board().profile.heap_bytes
    return [(heap, heap // 2, heap // 4, heap // 3)]


class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1

    def __init__(self, id, block_size=_BLOCK):
        if not _board().profile.has("ota"):
            raise OSError(2)  # ENOENT: this image has no OTA partitions
        self._block_size = block_size
        if id == Partition.RUNNING:
            self._entry = _LAYOUT[_running_slot()]
        elif id == Partition.BOOT:
            self._entry = _LAYOUT[_boot_slot()]
        else:
            matches = [entry for entry in _LAYOUT if entry[4] == id]
            if not matches:
                raise OSError(2)
            self._entry = matches[0]

    @staticmethod
    def find(type=TYPE_APP, subtype=0xFF, label=None, block_size=_BLOCK):
        if not _board().profile.has("ota") or type != Partition.TYPE_APP:
            return []
        return [Partition(entry[4], block_size) for entry in _LAYOUT
                if (subtype == 0xFF or entry[1] == subtype) and (label is None or entry[4] == label)]

    def info(self):
        kind, subtype, address, size, label = self._entry
        return (kind, subtype, address, size, label, False)

    def _path(self):
        folder = _board().private_dir / "partitions"
        folder.mkdir(exist_ok=True)
        path = folder / (self._entry[4] + ".bin")
        if not path.exists():
            with open(path, "wb") as handle:
                handle.truncate(self._entry[3])
        return path

    def readblocks(self, block_num, buf, offset=0):
        with open(self._path(), "rb") as handle:
            handle.seek(block_num * self._block_size + offset)
            data = handle.read(len(buf))
        buf[: len(data)] = data

    def writeblocks(self, block_num, buf, offset=None):
        with open(self._path(), "r+b") as handle:
            handle.seek(block_num * self._block_size + (offset or 0))
            handle.write(bytes(buf))

    def ioctl(self, cmd, arg):
        if cmd == 4:
            return self._entry[3] // self._block_size
        if cmd == 5:
            return self._block_size
        if cmd == 6:
            self.writeblocks(arg, b"\xff" * self._block_size)
            return 0
        return None

    def set_boot(self):
        _board().save_private("boot_slot", _LAYOUT.index(self._entry))

    def get_next_update(self):
        return Partition(_LAYOUT[1 - _LAYOUT.index(self._entry)][4], self._block_size)

    @staticmethod
    def mark_app_valid_cancel_rollback():
        _board().save_private("app_valid", True)

    def __repr__(self):
        kind, subtype, address, size, label = self._entry
        return "<Partition type=%d, subtype=%d, address=%d, size=%d, label=%s, encrypted=0>" % (kind, subtype, address, size, label)


def _boot_slot() -> int:
    return int(_board().load_private("boot_slot", 0))


def _running_slot() -> int:
    return int(_board().load_private("running_slot", _boot_slot()))


class NVS:
    """Non-volatile key/value storage, one namespace per instance."""

    def __init__(self, namespace):
        self._name = "nvs_" + namespace
        self._pending = dict(_board().load_private(self._name, {}))

    def _get(self, key, kind):
        if key not in self._pending or self._pending[key][0] != kind:
            raise OSError(-0x1102)  # ESP_ERR_NVS_NOT_FOUND
        return self._pending[key][1]

    def set_i32(self, key, value):
        self._pending[key] = ("i32", int(value))

    def get_i32(self, key):
        return self._get(key, "i32")

    def set_blob(self, key, value):
        self._pending[key] = ("blob", bytes(value).hex())

    def get_blob(self, key, buffer):
        data = bytes.fromhex(self._get(key, "blob"))
        buffer[: len(data)] = data
        return len(data)

    def erase_key(self, key):
        if key not in self._pending:
            raise OSError(-0x1102)
        del self._pending[key]

    def commit(self):
        _board().save_private(self._name, self._pending)
