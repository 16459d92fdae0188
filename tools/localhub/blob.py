"""Blob storage for device file upload (a later issue).

Planned here, behind one interface: start and stop Azurite (``tools/node``, pinned) or use a real
Azure storage connection string; issue container SAS URLs for ``POST /devices/{id}/files``; record
``/devices/{id}/files/notifications`` for the CLI and tests. Nothing in the hub imports this yet.
"""
