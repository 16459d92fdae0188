"""The real-MicroPython tier of the host emulation layer: device code in MicroPython's WebAssembly
port (Node), with sockets, TLS, the clock and heap reports bridged to this Python process.
See README.md in this folder for the design and for how to add a bridged service."""

from hostemu.peripherals import (BOARD_MODULES, EPOCH_2000_UNIX, BoardClock, ClockService, DeviceError,
                                 ManualClock, RealClock, Reply, VMStop, install_board_services, os_error)

from .bridge import HeapSample, MicroPythonVM, RunResult, VMError, VMTimeout
from hostemu.peripherals.netsvc import NetService

__all__ = [
    "BOARD_MODULES", "BoardClock", "install_board_services", "EPOCH_2000_UNIX", "ClockService", "DeviceError",
    "HeapSample", "ManualClock", "MicroPythonVM", "NetService", "RealClock", "Reply", "RunResult", "VMError",
    "VMStop", "VMTimeout", "os_error",
]
