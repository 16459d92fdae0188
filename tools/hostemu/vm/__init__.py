"""The real-MicroPython tier of the host emulation layer: device code in MicroPython's WebAssembly
port (Node), with sockets, TLS, the clock and heap reports bridged to this Python process.
See README.md in this folder for the design and for how to add a bridged service."""

from .boardsvc import BOARD_MODULES, BoardClock, install_board_services
from .bridge import HeapSample, MicroPythonVM, RunResult, VMError, VMTimeout
from .clock import EPOCH_2000_UNIX, ClockService, ManualClock, RealClock
from .netsvc import NetService
from .protocol import DeviceError, Reply, VMStop, os_error

__all__ = [
    "BOARD_MODULES", "BoardClock", "install_board_services", "EPOCH_2000_UNIX", "ClockService", "DeviceError", "HeapSample", "ManualClock", "MicroPythonVM",
    "NetService", "RealClock", "Reply", "RunResult", "VMError", "VMStop", "VMTimeout", "os_error",
]
