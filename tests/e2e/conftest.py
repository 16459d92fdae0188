"""The end-to-end tier's fixtures (e2e_fixtures.py; the unix tier uses the same ones)."""

from e2e_fixtures import hub, make_board  # noqa: F401  (pytest finds fixtures by name here)
