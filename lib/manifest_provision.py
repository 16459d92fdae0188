# Optional part: Device Provisioning Service registration over MQTT (iothub.provision), what an
# IoT Central device needs first. Needs the core (manifest.py); installable on its own with mip
# from provision.json.
metadata(version="0.1.0", description="Azure IoT Hub device library: DPS registration", license="MIT")
include("manifest.py")
package("iothub", files=("provision.py",), base_path=".")
