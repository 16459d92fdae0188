"""The device SDK's e2e telemetry and C2D tests (sync), unchanged, against a local hub: each
message the SDK sends is checked on the Event Hub-compatible endpoint by the suite's
EventHubConsumerClient; C2D goes out with send_c2d_message over AMQP."""

from __future__ import annotations

from pathlib import Path

from upstream_suite import assert_suite_passes

EXPECTED = {
    "TestSendMessage::test_sync_send_message_simple",
    "TestSendMessage::test_sync_connect_if_necessary",
    "TestSendMessage::test_sync_bad_payload_raises",
    "TestSendMessage::test_sync_sends_json_string",
    "TestSendMessage::test_sync_sends_random_string",
    "TestSendMessageRetryDisabled::test_sync_send_message_simple_with_retry_disabled",
    "TestSendMessageRetryDisabled::test_sync_connect_if_necessary_with_retry_disabled",
    "TestReceiveC2d::test_sync_receive_c2d",
    "TestServiceHelper::test_sync_wait_for_event_arrival",
}


def test_the_device_sdks_e2e_telemetry_and_c2d_tests_pass(tmp_path: Path) -> None:
    assert_suite_passes(tmp_path, ["sync/test_sync_send_message.py", "sync/test_sync_c2d.py",
                                   "sync/test_sync_infrastructure.py"], EXPECTED)
