"""The SDK's callback verification against the signers it must agree with: the Standard Webhooks reference
library and Tidings' own (``tidings.outbound.signing``), and its event models against the events Tidings
makes (``tidings.outbound.events``)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from tidings.outbound import events as outbound_events
from tidings.outbound import signing
from tidings_sdk.webhooks import (
    ChannelUpdated,
    NotificationFinished,
    OtherEvent,
    SignatureInvalid,
    SigningSecretInvalid,
    parse_event,
    verify,
    verify_event,
)

pytestmark = pytest.mark.unit

NOW = 1_796_205_600
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()


def notification(**changes):
    item = {
        "pk": "NOTIFICATION#n-1",
        "sk": "META",
        "notification_id": "n-1",
        "order_reference": "order-1",
        "status": "running",
        "updated_at": "2026-12-02T10:00:04.512Z",
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+447700900123"},
        "payment": {"status": "succeeded", "amount": 2599, "currency": "gbp", "payment_intent_id": "pi_1"},
        "channels": {"email": {"policy": "required", "status": "sent", "provider": "sendgrid"}},
    }
    return {**item, **changes}


def tidings_events():
    before = notification()
    delivered = {"email": {"policy": "required", "status": "delivered", "provider": "sendgrid"}}
    after = notification(status="delivered", finished_at="2026-12-02T10:00:06.020Z", channels=delivered)
    return outbound_events.events_for_change(before, after)


def test_a_callback_signed_by_tidings_verifies_and_reads_as_typed_events():
    # Given the events Tidings makes for a delivered e-mail and a finished notification, signed as it signs
    found = tidings_events()
    assert [event.type for event in found] == ["notification.channel.updated", "notification.finished"]
    for event in found:
        body = event.body()
        headers = signing.sign([SECRET], event.id, NOW, body)

        # When the shop verifies one
        parsed = verify_event(body, headers, SECRET, now=NOW)

        # Then it is the event, typed, with its id the webhook-id and no personal data
        assert parsed.id == event.id == verify(body, headers, SECRET, now=NOW)
        assert "ada@example.com" not in body
        if isinstance(parsed, ChannelUpdated):
            assert (parsed.data.channel, parsed.data.channel_status) == ("email", "delivered")
            assert parsed.data.previous_channel_status == "sent"
            assert parsed.data.recipient == "a***@example.com"
        else:
            assert isinstance(parsed, NotificationFinished)
            assert parsed.data.status == "delivered"
            assert parsed.data.payment is not None
            assert parsed.data.payment.amount == 2599
            assert parsed.data.channels["email"].status == "delivered"


def test_the_reference_library_and_the_sdk_agree_both_ways():
    body = tidings_events()[1].body()
    stamp = datetime.fromtimestamp(NOW, tz=UTC)
    signature = Webhook(SECRET).sign("msg_1", stamp, body)
    headers = {"Webhook-Id": "msg_1", "Webhook-Timestamp": str(NOW), "Webhook-Signature": signature}
    assert verify(body, headers, SECRET, now=NOW) == "msg_1"
    # ... and what the SDK accepts, the reference library accepts too (with the same clock)
    ours = signing.sign([SECRET], "msg_2", NOW, body)
    assert verify(body, ours, SECRET, now=NOW) == "msg_2"
    assert signing.verify(body, ours, SECRET, now=NOW) == "msg_2"


def test_during_a_key_roll_either_key_verifies():
    body = tidings_events()[0].body()
    headers = signing.sign([SECRET, OLD_SECRET], "msg_3", NOW, body)
    assert verify(body, headers, OLD_SECRET, now=NOW) == "msg_3"
    one_key = signing.sign([SECRET], "msg_3", NOW, body)
    assert verify(body, one_key, [OLD_SECRET, SECRET], now=NOW) == "msg_3"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda body, headers: (body.replace("delivered", "failed"), headers), "no_matching_signature"),
        (lambda body, headers: (body, {**headers, "webhook-id": "msg_other"}), "no_matching_signature"),
        (
            lambda body, headers: (body, {**headers, "webhook-timestamp": str(NOW - 301)}),
            "timestamp_outside_tolerance",
        ),
        (lambda body, headers: (body, {**headers, "webhook-timestamp": "soon"}), "malformed_header"),
        (
            lambda body, headers: (body, {k: v for k, v in headers.items() if k != "webhook-signature"}),
            "missing_header",
        ),
        (lambda body, headers: (body, {**headers, "webhook-signature": "v2,abc"}), "no_matching_signature"),
    ],
)
def test_a_tampered_stale_or_unsigned_callback_is_refused_with_its_reason(change, reason):
    body = tidings_events()[1].body()
    tampered_body, tampered_headers = change(body, signing.sign([SECRET], "msg_4", NOW, body))
    with pytest.raises(SignatureInvalid) as refused:
        verify(tampered_body, tampered_headers, SECRET, now=NOW)
    assert refused.value.reason == reason
    with pytest.raises(signing.SignatureInvalid) as reference_refused:
        signing.verify(tampered_body, tampered_headers, SECRET, now=NOW)
    assert reference_refused.value.reason == reason


def test_a_wrong_secret_is_refused_without_showing_it():
    body = tidings_events()[1].body()
    headers = signing.sign([SECRET], "msg_5", NOW, body)
    with pytest.raises(SignatureInvalid):
        verify(body, headers, OLD_SECRET, now=NOW)
    with pytest.raises(SigningSecretInvalid) as invalid:
        verify(body, headers, "not-a-secret", now=NOW)
    assert "not-a-secret" not in str(invalid.value)


def test_an_event_type_added_later_still_parses():
    body = json.dumps({"id": "msg_6", "type": "notification.refunded", "timestamp": "t", "data": {"x": 1}})
    parsed = parse_event(body)
    assert isinstance(parsed, OtherEvent)
    assert parsed.data == {"x": 1}
