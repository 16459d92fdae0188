# The sensor-node agent: see firmware/README.md. Imported by /main.py through fwguard.
