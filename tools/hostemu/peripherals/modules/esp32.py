# MicroPython's `esp32` for the hostemu VM: OTA partitions and NVS of the parent's board model
# (the CPython runtime's, same files in .hostemu/), by handle through the "esp" service.

from micropython import const
import _hostemu

_call = _hostemu.call
_SVC = "esp"
HEAP_DATA = const(4)
HEAP_EXEC = const(1)
WAKEUP_ALL_LOW = False
WAKEUP_ANY_HIGH = True


def raw_temperature():
    return _call(_SVC, "raw_temperature")


def mcu_temperature():
    return _call(_SVC, "mcu_temperature")


def idf_heap_info(capabilities):
    heap = _call(_SVC, "heap_bytes")
    return [(heap, heap // 2, heap // 4, heap // 3)]


def _json(text):
    import json

    return json.loads(text)


class Partition:
    BOOT = const(0)
    RUNNING = const(1)
    TYPE_APP = const(0)
    TYPE_DATA = const(1)

    def __init__(self, id, block_size=4096, _handle=None):
        self._block_size = block_size
        self._h = _handle if _handle is not None else _call(_SVC, "part_open", id, block_size)

    @staticmethod
    def find(type=0, subtype=0xFF, label=None, block_size=4096):
        return [Partition(None, block_size, h) for h in _json(_call(_SVC, "part_find", type, subtype, label, block_size))]

    def info(self):
        return tuple(_json(_call(_SVC, "part_info", self._h)))

    # offsets within a block are not bridged (call_in/call_out carry two arguments); littlefs and
    # OTA writers use whole blocks.
    def readblocks(self, block_num, buf, offset=0):
        _hostemu.call_in(_SVC, "part_read", _hostemu.addressof(buf), len(buf), self._h, block_num)

    def writeblocks(self, block_num, buf, offset=0):
        _hostemu.call_out(_SVC, "part_write", _hostemu.addressof(buf), len(buf), self._h, block_num)

    def ioctl(self, cmd, arg):
        return _call(_SVC, "part_ioctl", self._h, cmd, arg)

    def set_boot(self):
        _call(_SVC, "part_set_boot", self._h)

    def get_next_update(self):
        return Partition(None, self._block_size, _call(_SVC, "part_next", self._h))

    @staticmethod
    def mark_app_valid_cancel_rollback():
        _call(_SVC, "part_mark_valid")


class NVS:
    def __init__(self, namespace):
        self._h = _call(_SVC, "nvs_open", namespace)

    def set_i32(self, key, value):
        _call(_SVC, "nvs_set_i32", self._h, key, value)

    def get_i32(self, key):
        return _call(_SVC, "nvs_get_i32", self._h, key)

    def set_blob(self, key, value):
        _hostemu.call_out(_SVC, "nvs_set_blob", _hostemu.addressof(value), len(value), self._h, key)

    def get_blob(self, key, buffer):
        return _hostemu.call_in(_SVC, "nvs_get_blob", _hostemu.addressof(buffer), len(buffer), self._h, key)

    def erase_key(self, key):
        _call(_SVC, "nvs_erase_key", self._h, key)

    def commit(self):
        _call(_SVC, "nvs_commit", self._h)
