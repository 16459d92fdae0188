# Optional part: Device Provisioning Service registration over MQTT (iothub.provision), what an
# IoT Central device needs first. Needs the core (manifest.py); installable on its own with mip
# from provision.json.
# No metadata() here: include() shares the including manifest's metadata, and MicroPython's
# manifestfile refuses a second metadata() call in one chain (manifest.py has it).
include("manifest.py")
package("iothub", files=("provision.py",), base_path=".")
