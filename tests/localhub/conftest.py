"""Tests against a real local hub use the `hub` (one per test) and `module_hub` (one per module)
fixtures of tests/conftest.py: a started :class:`localhub.testing.HubProcess` each."""
