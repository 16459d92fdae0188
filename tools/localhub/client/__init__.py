"""Clients of a running hub: the service REST API (``hub_client.HubClient``) and the file-upload
notifications and blobs (``upload``). Used by the CLI and by ``localhub.testing``."""
