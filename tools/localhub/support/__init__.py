"""Process plumbing with no IoT Hub in it: log volume caps, TLS buffer sizes and open-file
limits, socket checks."""
