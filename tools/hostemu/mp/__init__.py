"""What is particular to the CPython runtime, and the board model every runtime shares.

- The interpreter as device code sees it on CPython: `gc` (the heap device code holds, by
  tracemalloc), `os` (the board folder as "/"), `sys`, `micropython`; and `utime` / `uselect`,
  the interpreter's own time and select that the shared device-side modules build on.
- The board model behind the host services (`hostemu/peripherals/services.py`): `machine` (CPU
  frequency, pins), `network` (the simulated radio), `ntptime`, `esp`, `esp32` (flash, OTA
  partitions, NVS), over the board's `hostemu.context.BoardContext`.

The board's modules device code imports (`machine`, `network`, `socket`, `ssl`, `time`, ...) are
the device-side modules all runtimes run (`hostemu/peripherals/modules`, `.../netmodules`), over
`hostemu.inproc` here. Each exposes exactly the API of its MicroPython namesake on the ESP ports,
no more: code that leans on something only CPython has fails here as it would on a board.
"""
