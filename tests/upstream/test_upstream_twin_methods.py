"""The device SDK's e2e twin and method tests (sync), unchanged, against a local hub: reported
patches are checked as twin change events on the Event Hub-compatible endpoint (the hub routes
twinChangeEvents there, as the suite's hub in Azure is set up to), desired patches and methods go
through azure-iot-hub."""

from __future__ import annotations

from pathlib import Path

from upstream_suite import assert_suite_passes

EXPECTED = {
    "TestReportedProperties::test_sync_sends_simple_reported_patch",
    "TestReportedProperties::test_sync_bad_reported_patch_raises",
    "TestReportedProperties::test_sync_clear_property",
    "TestReportedProperties::test_sync_patch_reported_connect_if_necessary",
    "TestDesiredProperties::test_sync_receives_simple_desired_patch",
    "TestMethods::test_sync_handle_method_call[with request and response payload]",
    "TestMethods::test_sync_handle_method_call[with request payload and no response payload]",
    "TestMethods::test_sync_handle_method_call[with response payload and no request payload ]",
    "TestMethods::test_sync_handle_method_call[with no request payload and no response payload]",
}


def test_the_device_sdks_e2e_twin_and_method_tests_pass(tmp_path: Path) -> None:
    assert_suite_passes(tmp_path, ["sync/test_sync_twin.py", "sync/test_sync_methods.py"], EXPECTED)
