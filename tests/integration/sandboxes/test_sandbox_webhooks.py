"""Webhooks the sandboxes send: what they carry, how they retry, and signatures checked independently.

Every signature here is recomputed from the providers' documented algorithms with hmac / cryptography
directly, never with the sandbox's own signing code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qsl

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from support.sandboxes import TWILIO_MESSAGES, sendgrid_mail

from tidings_local.sandboxes import credentials

pytestmark = pytest.mark.integration


# --- independent verifiers ----------------------------------------------------------------------------


def stripe_signature_valid(header: str, body: bytes, secret: str) -> bool:
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def sendgrid_signature_valid(signature: str, timestamp: str, body: bytes) -> bool:
    key = serialization.load_der_public_key(base64.b64decode(credentials.SENDGRID_WEBHOOK_PUBLIC_KEY))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    try:
        key.verify(base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def twilio_signature_valid(signature: str, url: str, body: bytes, token: str) -> bool:
    params = sorted(parse_qsl(body.decode(), keep_blank_values=True))
    data = url + "".join(name + value for name, value in params)
    expected = base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()
    return hmac.compare_digest(expected, signature)


# --- Stripe -------------------------------------------------------------------------------------------


def test_stripe_signs_the_event_sent_after_a_3ds_challenge(stripe, stripe_http, receiver):
    # Given a webhook endpoint and a payment waiting for 3-D Secure
    stripe.control.set_webhook(f"{receiver.url}/webhooks/stripe")
    intent = stripe_http.post(
        "/v1/payment_intents",
        data={
            "amount": "2500",
            "currency": "gbp",
            "payment_method": "pm_card_threeDSecure2Required",
            "confirm": "true",
            "metadata[notification_id]": "n-42",
        },
    ).json()
    # When the customer completes the challenge
    stripe.control.complete_action(intent["id"], "succeeded")
    stripe.control.wait_for_webhooks(2)
    # Then a signed payment_intent.succeeded event for that intent arrives
    events = [json.loads(r["body"]) for r in receiver.received]
    assert [e["type"] for e in events] == ["payment_intent.requires_action", "payment_intent.succeeded"]
    succeeded = receiver.received[1]
    event = events[1]
    assert event["object"] == "event"
    assert event["id"].startswith("evt_")
    assert event["livemode"] is False
    assert event["data"]["object"]["id"] == intent["id"]
    assert event["data"]["object"]["status"] == "succeeded"
    assert event["data"]["object"]["metadata"] == {"notification_id": "n-42"}
    assert succeeded["path"] == "/webhooks/stripe"
    header = succeeded["headers"]["Stripe-Signature"]
    assert stripe_signature_valid(header, succeeded["body"], credentials.STRIPE_WEBHOOK_SECRET)
    # And the check is real: another secret or a changed body does not verify
    assert not stripe_signature_valid(header, succeeded["body"], "whsec_other")
    assert not stripe_signature_valid(
        header, succeeded["body"].replace(b"succeeded", b"failed"), credentials.STRIPE_WEBHOOK_SECRET
    )


def test_stripe_failed_challenge_sends_payment_failed(stripe, stripe_http, receiver):
    stripe.control.set_webhook(receiver.url)
    intent = stripe_http.post(
        "/v1/payment_intents",
        data={
            "amount": "900",
            "currency": "usd",
            "payment_method": "pm_card_threeDSecure2Required",
            "confirm": "true",
        },
    ).json()
    stripe.control.complete_action(intent["id"], "failed")
    stripe.control.wait_for_webhooks(2)
    event = json.loads(receiver.received[-1]["body"])
    assert event["type"] == "payment_intent.payment_failed"
    assert event["data"]["object"]["last_payment_error"]["code"] == "payment_intent_authentication_failure"


def test_stripe_retries_non_2xx_and_re_signs_each_attempt(stripe, stripe_http, receiver):
    # Given an endpoint failing twice
    receiver.statuses = [500, 503]
    stripe.control.set_webhook(receiver.url, retry_delays=[0.0, 0.0, 0.0])
    stripe_http.post(
        "/v1/payment_intents",
        data={"amount": "1000", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"},
    )
    # Then the same event is delivered on the third attempt, each attempt validly signed
    delivery = stripe.control.wait_for_webhooks(1)[0]
    assert [a["status"] for a in delivery["attempts"]] == [500, 503, 200]
    assert delivery["delivered"] is True
    assert len({r["body"] for r in receiver.received}) == 1
    for attempt in receiver.received:
        assert stripe_signature_valid(
            attempt["headers"]["Stripe-Signature"], attempt["body"], credentials.STRIPE_WEBHOOK_SECRET
        )


def test_stripe_gives_up_after_the_configured_retries(stripe, stripe_http, receiver):
    receiver.statuses = [500] * 10
    stripe.control.set_webhook(receiver.url, retry_delays=[0.0, 0.0])
    stripe_http.post(
        "/v1/payment_intents",
        data={"amount": "1000", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"},
    )
    delivery = stripe.control.wait_for_webhooks(1)[0]
    assert len(delivery["attempts"]) == 3
    assert delivery["delivered"] is False


def test_a_rolled_webhook_secret_signs_new_events(stripe, stripe_http, receiver):
    stripe.control.set_webhook(receiver.url)
    stripe.control.set_credentials(webhook_secret="whsec_rolled")
    stripe_http.post(
        "/v1/payment_intents",
        data={"amount": "1000", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"},
    )
    stripe.control.wait_for_webhooks(1)
    sent = receiver.received[0]
    assert stripe_signature_valid(sent["headers"]["Stripe-Signature"], sent["body"], "whsec_rolled")
    assert not stripe_signature_valid(
        sent["headers"]["Stripe-Signature"], sent["body"], credentials.STRIPE_WEBHOOK_SECRET
    )


# --- SendGrid -----------------------------------------------------------------------------------------


def test_sendgrid_posts_processed_then_delivered_signed_with_ecdsa(sendgrid, sendgrid_http, receiver):
    # Given an Event Webhook endpoint
    sendgrid.control.set_webhook(f"{receiver.url}/webhooks/sendgrid")
    # When a mail with custom_args and a category is accepted
    response = sendgrid_http.post(
        "/v3/mail/send",
        json=sendgrid_mail(custom_args={"notification_id": "n-7"}, categories=["receipt"]),
    )
    message_id = response.headers["X-Message-Id"]
    sendgrid.control.wait_for_webhooks(2)
    # Then two signed batches: processed, then delivered, carrying the custom_args
    batches = [json.loads(r["body"]) for r in receiver.received]
    assert [[e["event"] for e in batch] for batch in batches] == [["processed"], ["delivered"]]
    for batch in batches:
        event = batch[0]
        assert event["email"] == "customer@example.com"
        assert event["notification_id"] == "n-7"
        assert event["category"] == ["receipt"]
        assert event["sg_message_id"].startswith(f"{message_id}.")
        assert isinstance(event["timestamp"], int)
    assert batches[0][0]["sg_event_id"] != batches[1][0]["sg_event_id"]
    for request in receiver.received:
        signature = request["headers"]["X-Twilio-Email-Event-Webhook-Signature"]
        timestamp = request["headers"]["X-Twilio-Email-Event-Webhook-Timestamp"]
        assert sendgrid_signature_valid(signature, timestamp, request["body"])
        assert not sendgrid_signature_valid(signature, str(int(timestamp) + 1), request["body"])
        assert not sendgrid_signature_valid(signature, timestamp, request["body"] + b" ")


def test_sendgrid_bounce_control_turns_delivery_into_a_bounce(sendgrid, sendgrid_http, receiver):
    sendgrid.control.set_webhook(receiver.url)
    sendgrid.control.add_bounce("gone@example.com")
    sendgrid_http.post("/v3/mail/send", json=sendgrid_mail("gone@example.com", "here@example.com"))
    sendgrid.control.wait_for_webhooks(2)
    outcomes = {e["email"]: e for e in json.loads(receiver.received[1]["body"])}
    assert outcomes["gone@example.com"]["event"] == "bounce"
    assert outcomes["gone@example.com"]["type"] == "bounce"
    assert outcomes["gone@example.com"]["status"].startswith("5.")
    assert outcomes["here@example.com"]["event"] == "delivered"


def test_sendgrid_retries_a_failed_batch(sendgrid, sendgrid_http, receiver):
    receiver.statuses = [502]
    sendgrid.control.set_webhook(receiver.url)
    sendgrid_http.post("/v3/mail/send", json=sendgrid_mail())
    deliveries = sendgrid.control.wait_for_webhooks(2)
    assert [a["status"] for a in deliveries[0]["attempts"]] == [502, 200]
    assert all(d["delivered"] for d in deliveries)


# --- Twilio -------------------------------------------------------------------------------------------


def test_twilio_status_callbacks_are_signed_over_url_and_sorted_params(twilio, twilio_http, receiver):
    # Given a message with its own StatusCallback URL (with a query string)
    callback = f"{receiver.url}/webhooks/twilio?notification=n-9"
    sid = twilio_http.post(
        TWILIO_MESSAGES,
        data={
            "To": "+447700900123",
            "From": credentials.TWILIO_FROM_NUMBER,
            "Body": "hi",
            "StatusCallback": callback,
        },
    ).json()["sid"]
    twilio.control.wait_for_webhooks(2)
    # Then sent, then delivered, each form-encoded and signed with the account's auth token
    forms = [dict(parse_qsl(r["body"].decode())) for r in receiver.received]
    assert [f["MessageStatus"] for f in forms] == ["sent", "delivered"]
    for form, request in zip(forms, receiver.received, strict=True):
        assert form["MessageSid"] == sid
        assert form["AccountSid"] == credentials.TWILIO_ACCOUNT_SID
        assert form["To"] == "+447700900123"
        assert form["ApiVersion"] == "2010-04-01"
        assert "ErrorCode" not in form
        assert request["path"] == "/webhooks/twilio?notification=n-9"
        assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
        signature = request["headers"]["X-Twilio-Signature"]
        assert twilio_signature_valid(signature, callback, request["body"], credentials.TWILIO_AUTH_TOKEN)
        assert not twilio_signature_valid(
            signature, callback + "&x=1", request["body"], credentials.TWILIO_AUTH_TOKEN
        )


def test_twilio_undeliverable_number_ends_undelivered_with_its_error_code(twilio, twilio_http, receiver):
    twilio.control.set_webhook(receiver.url)  # used when a message has no StatusCallback
    twilio.control.set_undeliverable("+447700900999", error_code=30005)
    sid = twilio_http.post(
        TWILIO_MESSAGES, data={"To": "+447700900999", "From": credentials.TWILIO_FROM_NUMBER, "Body": "hi"}
    ).json()["sid"]
    twilio.control.wait_for_webhooks(2)
    forms = [dict(parse_qsl(r["body"].decode())) for r in receiver.received]
    assert [(f["MessageStatus"], f.get("ErrorCode")) for f in forms] == [
        ("sent", None),
        ("undelivered", "30005"),
    ]
    message = twilio_http.get(TWILIO_MESSAGES.replace(".json", f"/{sid}.json")).json()
    assert message["status"] == "undelivered"
    assert message["error_code"] == 30005


def test_twilio_retries_a_status_callback_only_once(twilio, twilio_http, receiver):
    receiver.statuses = [500] * 10
    twilio.control.set_webhook(receiver.url, retry_delays=[0.0, 0.0, 0.0])
    twilio_http.post(
        TWILIO_MESSAGES, data={"To": "+447700900123", "From": credentials.TWILIO_FROM_NUMBER, "Body": "x"}
    )
    deliveries = twilio.control.wait_for_webhooks(2)
    assert [len(d["attempts"]) for d in deliveries] == [2, 2]
    # The idempotency token stays the same across the retry of one callback
    tokens = [r["headers"]["I-Twilio-Idempotency-Token"] for r in receiver.received]
    assert tokens[0] == tokens[1] != tokens[2] == tokens[3]


def test_unreachable_endpoint_is_recorded_as_connection_errors(twilio, twilio_http, receiver):
    url = receiver.url
    receiver.close()
    twilio.control.set_webhook(url)
    twilio_http.post(
        TWILIO_MESSAGES, data={"To": "+447700900123", "From": credentials.TWILIO_FROM_NUMBER, "Body": "x"}
    )
    deliveries = twilio.control.wait_for_webhooks(2)
    assert all(a["error"] == "ConnectError" for d in deliveries for a in d["attempts"])
    assert not any(d["delivered"] for d in deliveries)
