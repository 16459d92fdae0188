"""The protocol front ends over the services: MQTT over TLS (``mqtt``) and HTTPS (``routing``
shared by ``rest``, ``job_routes`` and ``upload_routes``; ``https_gate`` in front of aiohttp)."""
