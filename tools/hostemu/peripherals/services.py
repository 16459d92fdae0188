"""The simulated board's peripherals as services, for the device-side modules every runtime runs.

The modules in `modules/` (machine, network, ntptime, esp, esp32) call these: over the bridge of
the WebAssembly VM or the unix port, or in process on the CPython runtime (`hostemu.inproc`).
They forward to the board model (`hostemu.mp`) over the same `BoardContext` (reset cause, RTC,
unique id, Wi-Fi state and `.hostemu/wifi_down`, pins, OTA partitions, NVS): the runtimes
cannot drift apart because there is one implementation. A reset ends the run with
`VMStop(EXIT_*)`: the board process (or, on CPython, the process itself) exits with that code,
so the same supervisor restarts any of them with the same reset cause.

    board = BoardContext(...); context.install(board)
    vm = MicroPythonVM(board.fs_root, clock=BoardClock(board), link_up=network.is_link_up, ...)
    install_board_services(vm, board)      # anything with register_service() and call_hooks
"""

from __future__ import annotations

import errno
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hostemu import context
from hostemu.context import BoardContext

from .clock import RealClock
from .protocol import DeviceError, Reply, VMStop

BOARD_MODULES = Path(__file__).resolve().parent / "modules"


class BoardClock(RealClock):
    """Ticks from the board's power-up, RTC from the BoardContext (kept in `.hostemu/rtc.json`
    across soft resets, lost at power-up, exactly as for the CPython runtime)."""

    def __init__(self, board: BoardContext) -> None:
        super().__init__(epoch_unix=board.epoch_offset)
        self.board = board
        self._start = board.boot_monotonic

    def rtc_seconds(self) -> float:
        return self.board.rtc_seconds()

    def set_rtc_unix(self, unix_seconds: float) -> None:
        self.board.set_rtc_seconds(unix_seconds - self.epoch_unix)


def _device_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    """Host exceptions from the shared shims become the same exceptions in device code."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except (DeviceError, VMStop):
            raise
        except OSError as exc:
            raise DeviceError("OSError", *(exc.args or (errno.EIO,))) from None
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise DeviceError(type(exc).__name__, *[a for a in exc.args if isinstance(a, (int, str))]) from None
        except AttributeError as exc:  # a chip without this function
            raise DeviceError("NotImplementedError", str(exc)) from None

    wrapper.__name__ = method.__name__
    return wrapper


class _Service:
    """Wraps every op_* so host errors surface in device code as MicroPython raises them."""

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if name.startswith("op_") and callable(value):
            return _device_errors(value)
        return value


class MachineService(_Service):
    def __init__(self, board: BoardContext, monotonic: Callable[[], float] = time.monotonic) -> None:
        from hostemu.mp import machine

        self.board = board
        self.mp = machine
        self._pins: dict[int, Any] = {}
        self._monotonic = monotonic
        self._wdt_timeout: float | None = None
        self._wdt_deadline = float("inf")

    # resets end the VM run; the board process exits with the code the supervisor reads
    def op_reset(self) -> None:
        raise VMStop(context.EXIT_RESET, "machine.reset()")

    def op_soft_reset(self) -> None:
        raise VMStop(context.EXIT_SOFT_RESET, "machine.soft_reset()")

    def op_deepsleep(self, time_ms: int = 0) -> None:
        (self.board.private_dir / "deepsleep").write_text(str(int(time_ms)))
        raise VMStop(context.EXIT_DEEPSLEEP, "machine.deepsleep()")

    def op_causes(self) -> str:
        return json.dumps(self.board.profile.rules.reset_causes)

    def op_reset_cause(self) -> int:
        return self.board.reset_cause

    def op_unique_id(self, *, size: int) -> Reply:
        uid = self.board.unique_id()
        return Reply(len(uid), uid[:size])

    def op_freq(self, hz: int | None = None) -> int | None:
        return self.mp.freq(hz)

    # pins: the CPython runtime's Pin checks the profile's rules and holds the level
    def op_pin_init(self, pin_id: int, mode: int = -1, pull: int = -1, value: int | None = None) -> None:
        pin = self._pins.get(pin_id)
        if pin is None:
            self._pins[pin_id] = self.mp.Pin(pin_id, mode, pull, value)
        else:
            pin.init(mode, pull, value)

    def op_pin_value(self, pin_id: int, level: int | None = None) -> int | None:
        if pin_id not in self._pins:
            self.op_pin_init(pin_id)
        return self._pins[pin_id].value(level)

    # the watchdog: checked before every bridge call (device code that never calls the host and
    # never feeds it is stuck in a loop the VM's time limit ends)
    def op_wdt_start(self, timeout_ms: int) -> None:
        if not isinstance(timeout_ms, int) or timeout_ms < 1:
            raise DeviceError("ValueError", "WDT timeout too short")
        self._wdt_timeout = timeout_ms / 1000
        self.op_wdt_feed()

    def op_wdt_feed(self) -> None:
        if self._wdt_timeout is not None:
            self._wdt_deadline = self._monotonic() + self._wdt_timeout

    def check_watchdog(self) -> None:
        if self._monotonic() > self._wdt_deadline:
            print("hostemu: watchdog timeout, resetting", flush=True)
            raise VMStop(context.EXIT_WATCHDOG, "watchdog")

    def op_rtc_memory_len(self) -> int:
        return len(bytes.fromhex(self.board.load_private("rtc_memory", "")))

    def op_rtc_memory(self, *, size: int) -> Reply:
        data = bytes.fromhex(self.board.load_private("rtc_memory", ""))
        return Reply(len(data), data[:size])

    def op_set_rtc_memory(self, *, data: bytes) -> None:
        if len(data) > 2048:
            raise DeviceError("ValueError", "buffer too long")
        self.board.save_private("rtc_memory", data.hex())


class NetworkService(_Service):
    """WLAN: the CPython runtime's simulated radio (join delay, wrong password, wifi_down)."""

    def __init__(self, board: BoardContext) -> None:
        from hostemu.mp import network

        self.board = board
        self.mp = network
        self._wlans = {network.STA_IF: network.WLAN(network.STA_IF), network.AP_IF: network.WLAN(network.AP_IF)}

    def _wlan(self, interface: int) -> Any:
        wlan = self._wlans.get(interface)
        if wlan is None:
            raise DeviceError("ValueError", "invalid WLAN interface identifier")
        return wlan

    def op_active(self, interface: int, flag: int | None = None) -> bool | None:
        return self._wlan(interface).active(None if flag is None else bool(flag))

    def op_connect(self, interface: int, ssid: str | None = None, key: str | None = None) -> None:
        self._wlan(interface).connect(ssid, key)

    def op_disconnect(self, interface: int) -> None:
        self._wlan(interface).disconnect()

    def op_isconnected(self, interface: int) -> bool:
        return self._wlan(interface).isconnected()

    def op_status(self, interface: int, param: str | None = None) -> int:
        return self._wlan(interface).status(param)

    def op_ifconfig(self, interface: int) -> str:
        return json.dumps(list(self._wlan(interface).ifconfig()))

    def op_config(self, interface: int, name: str) -> str:
        value = self._wlan(interface).config(name)
        return value.hex() if isinstance(value, bytes) else json.dumps(value)

    def op_set_hostname(self, name: str) -> None:
        self.mp.hostname(name)

    def op_hostname(self) -> str:
        return self.mp.hostname()

    def op_scan(self, interface: int) -> str:
        return json.dumps([[s.decode(), b.hex(), ch, rssi, auth, hidden]
                           for s, b, ch, rssi, auth, hidden in self._wlan(interface).scan()])


class NtpService(_Service):
    def __init__(self, board: BoardContext) -> None:
        from hostemu.mp import ntptime

        self.mp = ntptime

    def op_time(self) -> int:
        return self.mp.time()

    def op_settime(self) -> None:
        self.mp.settime()


class EspService(_Service):
    """esp and esp32: flash size, OTA partitions and NVS of the CPython runtime, by handle."""

    def __init__(self, board: BoardContext) -> None:
        from hostemu.mp import esp, esp32

        self.board = board
        self.esp = esp
        self.esp32 = esp32
        self._objects: dict[int, Any] = {}
        self._next = 1

    def _keep(self, obj: Any) -> int:
        self._next += 1
        self._objects[self._next] = obj
        return self._next

    def _get(self, handle: object) -> Any:
        obj = self._objects.get(handle) if isinstance(handle, int) else None
        if obj is None:
            raise DeviceError("OSError", errno.EBADF)
        return obj

    def op_flash_size(self) -> int:
        return self.esp.flash_size()

    def op_chip(self) -> str:
        return self.board.profile.chip

    def op_heap_bytes(self) -> int:
        return self.board.profile.heap_bytes

    def op_raw_temperature(self) -> int:
        return self.esp32.raw_temperature()

    def op_mcu_temperature(self) -> float:
        return self.esp32.mcu_temperature()

    # partitions
    def op_part_open(self, ident: int | str, block_size: int = 4096) -> int:
        return self._keep(self.esp32.Partition(ident, block_size))

    def op_part_find(self, kind: int = 0, subtype: int = 0xFF, label: str | None = None, block_size: int = 4096) -> str:
        return json.dumps([self._keep(p) for p in self.esp32.Partition.find(kind, subtype, label, block_size)])

    def op_part_info(self, handle: int) -> str:
        return json.dumps(list(self._get(handle).info()))

    def op_part_read(self, handle: int, block_num: int, offset: int = 0, *, size: int) -> Reply:
        buf = bytearray(size)
        self._get(handle).readblocks(block_num, buf, offset)
        return Reply(size, bytes(buf))

    def op_part_write(self, handle: int, block_num: int, offset: int = 0, *, data: bytes) -> None:
        self._get(handle).writeblocks(block_num, data, offset)

    def op_part_ioctl(self, handle: int, cmd: int, arg: int = 0) -> int | None:
        return self._get(handle).ioctl(cmd, arg)

    def op_part_set_boot(self, handle: int) -> None:
        self._get(handle).set_boot()

    def op_part_next(self, handle: int) -> int:
        return self._keep(self._get(handle).get_next_update())

    def op_part_mark_valid(self) -> None:
        self.esp32.Partition.mark_app_valid_cancel_rollback()

    # NVS
    def op_nvs_open(self, namespace: str) -> int:
        return self._keep(self.esp32.NVS(namespace))

    def op_nvs_set_i32(self, handle: int, key: str, value: int) -> None:
        self._get(handle).set_i32(key, value)

    def op_nvs_get_i32(self, handle: int, key: str) -> int:
        return self._get(handle).get_i32(key)

    def op_nvs_set_blob(self, handle: int, key: str, *, data: bytes) -> None:
        self._get(handle).set_blob(key, data)

    def op_nvs_get_blob(self, handle: int, key: str, *, size: int) -> Reply:
        data = bytes.fromhex(self._get(handle)._get(key, "blob"))
        if len(data) > size:
            raise DeviceError("OSError", -0x1107)  # ESP_ERR_NVS_INVALID_LENGTH
        return Reply(len(data), data)

    def op_nvs_erase_key(self, handle: int, key: str) -> None:
        self._get(handle).erase_key(key)

    def op_nvs_commit(self, handle: int) -> None:
        self._get(handle).commit()


def install_board_services(vm: Any, board: BoardContext) -> MachineService:
    """Register machine/network/ntptime/esp services of `board` on `vm` (context installed)."""
    context.install(board)
    machine = MachineService(board)
    vm.register_service("machine", machine)
    vm.register_service("network", NetworkService(board))
    vm.register_service("ntptime", NtpService(board))
    vm.register_service("esp", EspService(board))
    vm.call_hooks.append(machine.check_watchdog)
    if hasattr(vm, "request_heap_exhaustion"):
        def exhaust_on_request() -> None:
            wanted = board.take_heap_exhaustion()
            if wanted and "." in wanted:
                vm.request_heap_exhaustion(*wanted.split(".", 1))

        vm.call_hooks.append(exhaust_on_request)
    return machine
