"""The simulated board's peripherals for device code running in a real MicroPython interpreter
(`hostemu.vm`, the WebAssembly port; `hostemu.unix`, the unix port): the device-side modules in
`modules/` (machine, network, ntptime, esp, esp32), the bridge protocol they speak, and the host
services that answer them over the same board model as the CPython runtime."""

from .clock import EPOCH_2000_UNIX, ClockService, ManualClock, RealClock
from .host import ServiceHost
from .protocol import DeviceError, Reply, VMStop, os_error
from .services import BOARD_MODULES, BoardClock, install_board_services

__all__ = ["BOARD_MODULES", "BoardClock", "ClockService", "DeviceError", "EPOCH_2000_UNIX", "ManualClock",
           "RealClock", "Reply", "ServiceHost", "VMStop", "install_board_services", "os_error"]
