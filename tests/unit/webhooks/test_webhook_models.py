"""Provider payloads normalised into WebhookEvent: identities, correlation, and no personal data."""

import json

import pytest

from tidings.errors import InvalidRequest
from tidings.webhooks.models import parse_sendgrid_events, parse_stripe_event, parse_twilio_callback

pytestmark = pytest.mark.unit

NOW = 1_767_225_600


def stripe_event(kind="payment_intent.succeeded", **intent):
    return json.dumps(
        {
            "id": "evt_123",
            "object": "event",
            "type": kind,
            "created": NOW - 5,
            "data": {
                "object": {
                    "id": "pi_123",
                    "object": "payment_intent",
                    "receipt_email": "jane.doe@example.com",
                    "metadata": {"notification_id": "n-1"},
                    **intent,
                }
            },
        }
    ).encode()


def test_stripe_success_keeps_ids_and_correlation_but_no_personal_data():
    event = parse_stripe_event(stripe_event(), received_at=NOW)
    assert (event.event_id, event.provider_object_id, event.notification_id) == ("evt_123", "pi_123", "n-1")
    assert (event.kind, event.status, event.channel, event.occurred_at) == (
        "payment_intent.succeeded",
        "succeeded",
        "payment",
        NOW - 5,
    )
    assert "jane.doe" not in event.model_dump_json()


def test_stripe_failure_carries_decline_code_only():
    body = stripe_event(
        "payment_intent.payment_failed",
        last_payment_error={
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
        },
    )
    event = parse_stripe_event(body, received_at=NOW)
    assert event.status == "failed"
    assert event.detail == {"decline_code": "insufficient_funds", "code": "card_declined"}


def test_stripe_event_types_tidings_does_not_act_on_are_ignored():
    assert parse_stripe_event(stripe_event("charge.refunded"), received_at=NOW) is None


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"type": "payment_intent.succeeded"}'])
def test_stripe_malformed_payload_is_an_invalid_request(body):
    with pytest.raises(InvalidRequest):
        parse_stripe_event(body, received_at=NOW)


def test_sendgrid_array_gives_one_event_per_tracked_item():
    body = json.dumps(
        [
            {
                "email": "jane@example.com",
                "event": "processed",
                "sg_event_id": "e1",
                "sg_message_id": "m1",
                "timestamp": NOW,
                "notification_id": "n-1",
            },
            {"email": "jane@example.com", "event": "open", "sg_event_id": "e2", "sg_message_id": "m1"},
            {
                "email": "jane@example.com",
                "event": "bounce",
                "type": "bounce",
                "sg_event_id": "e3",
                "sg_message_id": "m1",
                "reason": "550 5.1.1 jane@example.com does not exist",
                "notification_id": "n-1",
            },
        ]
    ).encode()
    events = parse_sendgrid_events(body, received_at=NOW)
    assert [(e.event_id, e.kind, e.status) for e in events] == [
        ("e1", "processed", "queued"),
        ("e3", "bounce", "bounced"),
    ]
    assert events[1].detail == {"type": "bounce"}
    assert all(e.notification_id == "n-1" and e.channel == "email" for e in events)
    assert "jane" not in json.dumps([e.model_dump() for e in events])


def test_sendgrid_item_without_event_id_is_malformed():
    with pytest.raises(InvalidRequest) as caught:
        parse_sendgrid_events(b'[{"event": "delivered"}]', received_at=NOW)
    assert caught.value.field == "[0].sg_event_id"


def test_twilio_identity_is_sid_and_status_and_correlation_comes_from_the_callback_url():
    params = {
        "MessageSid": ["SM1"],
        "MessageStatus": ["undelivered"],
        "To": ["+447700900123"],
        "ErrorCode": ["30005"],
    }
    event = parse_twilio_callback(params, {"notification_id": ["n-9"]}, received_at=NOW)
    assert (event.event_id, event.status, event.notification_id, event.detail) == (
        "SM1:undelivered",
        "undelivered",
        "n-9",
        {"error_code": "30005"},
    )
    assert "7700900123" not in event.model_dump_json()


def test_twilio_blank_error_code_is_dropped_and_missing_sid_is_malformed():
    event = parse_twilio_callback(
        {"MessageSid": ["SM1"], "MessageStatus": ["sent"], "ErrorCode": [""]}, {}, received_at=NOW
    )
    assert event.detail == {}
    assert event.notification_id is None
    with pytest.raises(InvalidRequest):
        parse_twilio_callback({"MessageStatus": ["sent"]}, {}, received_at=NOW)


def test_the_request_id_comes_back_from_stripe_metadata_and_sendgrid_custom_args_when_it_is_safe():
    metadata = {"notification_id": "n-1", "request_id": "shop:req-9"}
    assert parse_stripe_event(stripe_event(metadata=metadata), received_at=NOW).request_id == "shop:req-9"
    items = [
        {"sg_event_id": "e1", "event": "delivered", "notification_id": "n-1", "request_id": "shop:req-9"},
        # A value that is not a request id (forged or mangled on the way) is dropped, not carried on
        {"sg_event_id": "e2", "event": "delivered", "notification_id": "n-1", "request_id": "a\r\nb"},
    ]
    events = parse_sendgrid_events(json.dumps(items).encode(), received_at=NOW)
    assert [event.request_id for event in events] == ["shop:req-9", None]
    assert parse_stripe_event(stripe_event(), received_at=NOW).request_id is None


def test_a_twilio_callback_brings_the_api_calls_request_id_back_from_its_url_and_only_a_valid_one():
    params = {"MessageSid": ["SM7"], "MessageStatus": ["delivered"]}
    query = {"notification_id": ["n-9"], "request_id": ["shop-7:trace.e2e-1"]}
    assert parse_twilio_callback(params, query, received_at=NOW).request_id == "shop-7:trace.e2e-1"
    forged = {"notification_id": ["n-9"], "request_id": ["a b\r\nX-Injected: 1"]}
    assert parse_twilio_callback(params, forged, received_at=NOW).request_id is None
    assert parse_twilio_callback(params, {"notification_id": ["n-9"]}, received_at=NOW).request_id is None
