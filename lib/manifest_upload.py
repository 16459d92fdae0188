# Optional part: chunked HTTPS file upload to blob storage through IoT Hub. Needs the core
# (manifest.py); installable on its own with mip from upload.json.
metadata(version="0.1.0", description="Azure IoT Hub device library: file upload in bounded memory", license="MIT")
include("manifest.py")
package("iothub", files=("blocks.py", "http.py", "upload.py"), base_path=".")
