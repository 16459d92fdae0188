"""The firmware tier's fixtures (fw_fixtures.py; the unix tier uses the same ones)."""

from fw_fixtures import fw_hub, own_hub  # noqa: F401  (pytest finds fixtures by name here)
