"""The board's sensors: real ones where board.json ``features`` names them, simulated otherwise.

``read()`` returns a small dict merged into each telemetry message. On the host emulation layer
the ESP32 temperature sensor is emulated; the rest is a deterministic simulation (a slow wave
from the tick counter) so the numbers move without needing ``random``.
"""

import time

# The board's sensors are the board's: module state rather than a class and its instance, which
# would cost heap in place for nothing (app.sensors is this module: app.sensors.read()).
_mcu = None


def setup(board):
    """Find the sensors board.json ``features`` names."""
    global _mcu
    features = board.get("features") or ()
    _mcu = None
    if "internal_temperature" in features:
        try:
            import esp32

            _mcu = esp32
        except ImportError:
            _mcu = None


def read():
    out = {}
    if _mcu is not None:
        try:
            out["mcuTemperature"] = round(_mcu.mcu_temperature(), 1)
        except Exception:
            try:
                out["mcuTemperature"] = round((_mcu.raw_temperature() - 32) / 1.8, 1)
            except Exception:
                pass
    # Simulated environment sensor: a triangle wave with a 10-minute period.
    phase = (time.ticks_ms() // 1000) % 600
    wave = phase if phase < 300 else 600 - phase
    out["temperature"] = round(18 + wave / 30, 2)
    out["humidity"] = round(40 + wave / 15, 1)
    return out
