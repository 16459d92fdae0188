# Freeze the whole agent into a MicroPython firmware image, so its bytecode runs from flash as it
# does from a ROMFS image (`boardkit deploy` does that without building firmware):
#   cd micropython/ports/esp8266
#   make BOARD=ESP8266_GENERIC FROZEN_MANIFEST=/path/to/this/repo/firmware/manifest.py
# (ports/esp32: the same FROZEN_MANIFEST with BOARD=ESP32_GENERIC). boot.py, main.py, board.json
# and config.json stay files on the board's filesystem (`boardkit deploy --files` copies them,
# or mpremote cp). A firmware update still works: the new app/ on the filesystem comes before
# .frozen on sys.path; a rollback that has no app.old removes it only when /rom holds an app, so
# with frozen code a failed update keeps the new app until the next deploy.
include("$(PORT_DIR)/boards/manifest.py")  # the port's own frozen modules (ssl, ntptime, ...)
include("../lib/manifest_upload.py")  # lib/iothub, file upload included
include("../lib/manifest_provision.py")  # and DPS registration
module("fwguard.py")
package("app")
