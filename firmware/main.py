# Runs after boot.py: bring the app up, roll a failed update back, never stop for good.
# Everything else lives in app/ (replaced by firmware updates); this file and fwguard.py are not.
import gc
import sys
import time

import machine
from iothub import transient

gc.collect()
# fwguard runs here and again only to confirm or roll back an update: in place it is released.
_state = transient("fwguard").prepare()
try:
    from app import main as _app
except Exception as _e:  # the app does not even import: a broken update (or a broken flash)
    sys.print_exception(_e)
    if _state.get("pending"):
        transient("fwguard").rollback("the new version failed to import: %r" % (_e,))
        machine.reset()
    raise
gc.collect()
try:
    _app.run(_state)
except KeyboardInterrupt:
    raise
except Exception as _e:  # last resort: report, wait, start afresh (the watchdog would anyway)
    sys.print_exception(_e)
    print('{"event": "crash", "error": "%s"}' % repr(_e).replace('"', "'"))
    time.sleep_ms(5000)
    machine.reset()
