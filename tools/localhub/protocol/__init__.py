"""IoT Hub's dialect, pure: SAS tokens and rights, MQTT packets, topics and property bags, twin
documents, the error vocabulary. No I/O, no clock of its own; imports nothing else of the hub.
Property bags and subscription filters are the device library's (``iothub.topics``)."""
