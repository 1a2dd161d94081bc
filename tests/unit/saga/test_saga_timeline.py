"""The joined timeline: execution history, provider calls, webhooks and queue hops in causal order."""

from datetime import UTC, datetime, timedelta

import pytest

from tidings.api.timeline import build_timeline, queue_name
from tidings.notifications.models import Notification, TimelineEvent

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def iso(seconds: float) -> str:
    return at(seconds).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def history(*events):
    return [
        {"id": n, "timestamp": at(t), "type": kind, **detail} for n, (t, kind, detail) in enumerate(events, 1)
    ]


def entered(name):
    return {"stateEnteredEventDetails": {"name": name}}


def exited(name):
    return {"stateExitedEventDetails": {"name": name}}


def failed(error):
    return {"taskFailedEventDetails": {"resourceType": "lambda", "resource": "invoke", "error": error}}


LAMBDA = {"taskScheduledEventDetails": {"resourceType": "lambda", "resource": "invoke", "parameters": "{}"}}
PARK = {
    "taskScheduledEventDetails": {
        "resourceType": "sqs",
        "resource": "sendMessage",
        "parameters": '{"QueueUrl": "http://127.0.0.1:4566/123456789012/tidings-local-EmailDeadLetterQueue"}',
    }
}

PAYMENT = {"amount": 2599, "currency": "gbp", "payment_method": "pm_card_visa"}
CUSTOMER = {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+447700900123"}

NOTIFICATION = {
    "notification_id": "n-1",
    "client_id": "client-1",
    "payment": PAYMENT,
    "order_reference": "order-1",
    "status": "partially_delivered",
    "status_reason": "email_dead_lettered",
    "created_at": iso(0),
    "finished_at": iso(9),
    "customer": CUSTOMER,
    "channels": {
        "email": {"status": "dead_lettered", "policy": "best_effort"},
        "sms": {"status": "delivered", "provider": "twilio", "policy": "best_effort"},
    },
}

HISTORY = history(
    (0.0, "ExecutionStarted", {}),
    (0.1, "TaskStateEntered", entered("ChargePayment")),
    (0.1, "TaskScheduled", LAMBDA),
    (1.0, "TaskSucceeded", {}),
    (1.0, "TaskStateExited", exited("ChargePayment")),
    (1.1, "TaskStateEntered", entered("SendReceiptEmail")),
    (1.1, "TaskScheduled", LAMBDA),
    (1.5, "TaskFailed", failed("ProviderUnavailable")),
    (2.5, "TaskScheduled", LAMBDA),
    (3.0, "TaskFailed", failed("ProviderUnavailable")),
    (3.0, "TaskStateExited", exited("SendReceiptEmail")),
    (3.1, "TaskStateEntered", entered("ParkEmailInDeadLetterQueue")),
    (3.1, "TaskScheduled", PARK),
    (3.2, "TaskSucceeded", {}),
    (3.2, "TaskStateExited", exited("ParkEmailInDeadLetterQueue")),
    (8.0, "ExecutionSucceeded", {}),
)

RECORDS = [
    # The Stripe webhook reporting the charge was received (0.5 s) before the step recorded its call
    # (0.9 s): it must still come after the call.
    {
        "step": "WebhookStripe",
        "outcome": "payment_intent.succeeded",
        "at": iso(0.5),
        "provider": "stripe",
        "details": {"event_id": "evt_1", "provider_object_id": "pi_123", "status": "succeeded"},
    },
    {
        "step": "ChargePayment",
        "outcome": "charged",
        "at": iso(0.9),
        "provider": "stripe",
        "attempt": 1,
        "details": {"payment_intent_id": "pi_123", "status": "succeeded"},
    },
    {
        "step": "SendReceiptEmail",
        "outcome": "failed",
        "at": iso(1.4),
        "provider": "sendgrid",
        "attempt": 1,
        "details": {
            "error_type": "ProviderUnavailable",
            "status": 503,
            "code": "outage",
            "request_id": "sg-r1",
            "latency_ms": 412,
        },
    },
    {
        "step": "SendReceiptEmail",
        "outcome": "failed",
        "at": iso(2.9),
        "provider": "sendgrid",
        "attempt": 2,
        "details": {
            "error_type": "ProviderUnavailable",
            "status": 503,
            "message": "refused for ada@example.com",
        },
    },
    # Two Twilio webhooks arriving in reverse order of the send they report.
    {
        "step": "WebhookTwilio",
        "outcome": "delivered",
        "at": iso(4.0),
        "provider": "twilio",
        "details": {"event_id": "e2", "provider_object_id": "SM1", "status": "delivered"},
    },
    {
        "step": "SendSms",
        "outcome": "sent",
        "at": iso(5.0),
        "provider": "twilio",
        "attempt": 1,
        "details": {"provider": "twilio", "provider_message_id": "SM1"},
    },
    {"step": "RecordOutcome", "outcome": "partially_delivered", "at": iso(7.5), "details": {}},
]


def timeline():
    return build_timeline(
        Notification.model_validate(NOTIFICATION),
        [TimelineEvent.model_validate(record) for record in RECORDS],
        HISTORY,
    )


def test_entries_have_a_monotonic_order_a_source_and_a_lane():
    entries = timeline()
    assert [entry["order"] for entry in entries] == list(range(1, len(entries) + 1))
    assert {entry["source"] for entry in entries} == {
        "execution",
        "provider",
        "webhook",
        "queue",
        "saga",
        "outcome",
    }
    assert all(entry["actor"] for entry in entries)


def test_webhooks_come_after_the_provider_call_they_report_whatever_their_timestamps():
    entries = timeline()
    position = {
        (e.get("step"), e.get("kind"), e.get("object_id") or e.get("provider_request_id")): e["order"]
        for e in entries
    }
    assert (
        position[("WebhookStripe", "webhook", "pi_123")]
        > position[("ChargePayment", "provider_call", "pi_123")]
    )
    assert position[("WebhookTwilio", "webhook", "SM1")] > position[("SendSms", "provider_call", "SM1")]
    moved = [e for e in entries if e.get("reordered")]
    assert {e["step"] for e in moved} == {"WebhookStripe", "WebhookTwilio"}


def test_retries_and_catches_carry_the_error_name_and_the_park_names_its_queue():
    entries = timeline()
    kinds = [(e["kind"], e.get("state"), e.get("error")) for e in entries if e["source"] == "execution"]
    assert ("retry", "SendReceiptEmail", "ProviderUnavailable") in kinds
    assert ("caught", "SendReceiptEmail", "ProviderUnavailable") in kinds
    assert kinds.index(("retry", "SendReceiptEmail", "ProviderUnavailable")) < kinds.index(
        ("caught", "SendReceiptEmail", "ProviderUnavailable")
    )
    [parked] = [e for e in entries if e["kind"] == "parked"]
    assert (parked["queue"], parked["state"]) == ("EmailDeadLetterQueue", "ParkEmailInDeadLetterQueue")


def test_provider_calls_name_method_path_status_and_request_id_and_are_redacted():
    calls = [e for e in timeline() if e["kind"] == "provider_call"]
    first_failure = next(c for c in calls if c["provider"] == "sendgrid")
    assert (first_failure["method"], first_failure["path"]) == ("POST", "/v3/mail/send")
    assert (first_failure["http_status"], first_failure["code"]) == (503, "outage")
    assert first_failure["provider_request_id"] == "sg-r1"
    assert first_failure["latency_ms"] == 412
    assert first_failure["error_type"] == "ProviderUnavailable"
    assert "ada@example.com" not in str(timeline())


def test_the_last_entry_is_the_status_and_the_queue_each_waiting_channel_is_in():
    final = timeline()[-1]
    assert final["kind"] == "final_status"
    assert final["status"] == "partially_delivered"
    assert final["waiting_in"] == [
        {"channel": "email", "status": "dead_lettered", "queue": "EmailDeadLetterQueue"}
    ]


def test_a_notification_without_history_or_records_still_has_its_status():
    accepted = {"status": "accepted", "created_at": iso(0), "channels": {}}
    bare = Notification.model_validate(
        {"notification_id": "n-2", "client_id": "client-1", "order_reference": "order-2"}
        | {"customer": CUSTOMER, "payment": PAYMENT}
        | accepted
    )
    [only] = build_timeline(bare, [], [])
    assert (only["order"], only["kind"], only["status"]) == (1, "current_status", "accepted")


def test_queue_names_are_the_logical_ids_on_aws_and_locally():
    assert (
        queue_name("https://sqs.eu-west-1.amazonaws.com/1/tidings-dev-SmsOutageQueue-1A2B3C")
        == "SmsOutageQueue"
    )
    assert queue_name("http://127.0.0.1:4566/1/tidings-local-SmsDeadLetterQueue") == "SmsDeadLetterQueue"
