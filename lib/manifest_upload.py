# Optional part: chunked HTTPS file upload to blob storage through IoT Hub. Needs the core
# (manifest.py); installable on its own with mip from upload.json.
# No metadata() here: include() shares the including manifest's metadata, and MicroPython's
# manifestfile refuses a second metadata() call in one chain (manifest.py has it).
include("manifest.py")
package("iothub", files=("blocks.py", "http.py", "upload.py"), base_path=".")
