"""The account calls an operator's set-up makes (docs/deploy.md): Stripe's balance and webhook endpoints,
SendGrid's Event Webhook settings and signed key, Twilio's phone numbers; and that events then go where
they were registered, signed with the key the provider answered."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tidings_local.sandboxes import credentials

pytestmark = pytest.mark.integration

TW = f"/2010-04-01/Accounts/{credentials.TWILIO_ACCOUNT_SID}"
MAIL = {
    "personalizations": [{"to": [{"email": "customer@example.com"}]}],
    "from": {"email": "receipts@shop.example"},
    "subject": "Receipt",
    "content": [{"type": "text/plain", "value": "Thanks"}],
}


def test_stripe_balance_says_test_mode(stripe_http):
    balance = stripe_http.get("/v1/balance")
    assert balance.status_code == 200
    assert balance.json()["object"] == "balance"
    assert balance.json()["livemode"] is False


def test_stripe_refuses_balance_to_an_unknown_key(stripe):
    import httpx

    answer = httpx.get(f"{stripe.base_url}/v1/balance", headers={"Authorization": "Bearer sk_test_nope"})
    assert answer.status_code == 401


def test_stripe_endpoint_secret_is_answered_once_and_signs_the_events_it_wants(stripe, stripe_http, receiver):
    # Given an endpoint registered for payment_intent.succeeded only
    created = stripe_http.post(
        "/v1/webhook_endpoints",
        data={"url": f"{receiver.url}/hook", "enabled_events[0]": "payment_intent.succeeded"},
    )
    assert created.status_code == 200, created.text
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["status"] == "enabled"
    listed = stripe_http.get("/v1/webhook_endpoints").json()["data"]
    assert [e["id"] for e in listed] == [endpoint["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in stripe_http.get(f"/v1/webhook_endpoints/{endpoint['id']}").json()

    # When a payment succeeds
    paid = stripe_http.post(
        "/v1/payment_intents",
        data={"amount": "1000", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"},
    )
    assert paid.json()["status"] == "succeeded"
    stripe.control.wait_for_webhooks(1)

    # Then only that event reached the endpoint, signed with its secret
    (delivery,) = [d for d in stripe.control.webhook_deliveries() if d["delivered"]]
    assert delivery["url"] == f"{receiver.url}/hook"
    assert delivery["event"] == "payment_intent.succeeded"
    header = dict(part.split("=", 1) for part in delivery["headers"]["Stripe-Signature"].split(","))
    signed = f"{header['t']}.".encode() + delivery["body"].encode()
    assert header["v1"] == hmac.new(endpoint["secret"].encode(), signed, hashlib.sha256).hexdigest()


def test_stripe_endpoint_update_disable_and_delete(stripe_http):
    endpoint = stripe_http.post(
        "/v1/webhook_endpoints", data={"url": "https://shop.example/a", "enabled_events[0]": "*"}
    ).json()
    updated = stripe_http.post(
        f"/v1/webhook_endpoints/{endpoint['id']}", data={"url": "https://shop.example/b", "disabled": "true"}
    ).json()
    assert (updated["url"], updated["status"]) == ("https://shop.example/b", "disabled")
    assert stripe_http.delete(f"/v1/webhook_endpoints/{endpoint['id']}").json()["deleted"] is True
    assert stripe_http.get(f"/v1/webhook_endpoints/{endpoint['id']}").status_code == 404


@pytest.mark.parametrize(
    ("form", "param"),
    [
        ({"enabled_events[0]": "*"}, "url"),
        ({"url": "https://shop.example/a"}, "enabled_events"),
        ({"url": "https://shop.example/a", "enabled_events[0]": "not an event"}, "enabled_events[0]"),
        ({"url": "https://shop.example/a", "enabled_events[0]": "*", "colour": "red"}, "colour"),
    ],
)
def test_stripe_refuses_a_bad_endpoint(stripe_http, form, param):
    answer = stripe_http.post("/v1/webhook_endpoints", data=form)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == param


def test_sendgrid_event_webhook_signed_posts_only_enabled_events(sendgrid, sendgrid_http, receiver):
    # Given a fresh account's Event Webhook: one, disabled, without a URL
    current = sendgrid_http.get("/v3/user/webhooks/event/settings").json()
    assert (current["enabled"], current["url"]) == (False, "")
    # When it is pointed at the receiver for delivered events, and signing is turned on
    patched = sendgrid_http.patch(
        f"/v3/user/webhooks/event/settings/{current['id']}",
        json={"enabled": True, "url": f"{receiver.url}/sg", "delivered": True},
    )
    assert patched.status_code == 200, patched.text
    signed = sendgrid_http.patch(
        f"/v3/user/webhooks/event/settings/signed/{current['id']}", json={"enabled": True}
    ).json()
    assert signed["public_key"]
    assert signed["public_key"] != credentials.SENDGRID_WEBHOOK_PUBLIC_KEY
    assert sendgrid_http.get("/v3/user/webhooks/event/settings").json()["public_key"] == signed["public_key"]
    assert sendgrid_http.post("/v3/mail/send", json=MAIL).status_code == 202
    sendgrid.control.wait_for_webhooks(1)

    # Then only the delivered event arrives, verifiable with the public key answered
    (delivery,) = [d for d in sendgrid.control.webhook_deliveries() if d["delivered"]]
    assert [e["event"] for e in json.loads(delivery["body"])] == ["delivered"]
    key = serialization.load_der_public_key(base64.b64decode(signed["public_key"]))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    headers = delivery["headers"]
    key.verify(
        base64.b64decode(headers["X-Twilio-Email-Event-Webhook-Signature"]),
        headers["X-Twilio-Email-Event-Webhook-Timestamp"].encode() + delivery["body"].encode(),
        ec.ECDSA(hashes.SHA256()),
    )


def test_sendgrid_settings_errors(sendgrid_http):
    assert sendgrid_http.get("/v3/user/webhooks/event/settings/no-such-id").status_code == 404
    assert sendgrid_http.patch("/v3/user/webhooks/event/settings", json={"enabled": True}).status_code == 400
    signed_off = sendgrid_http.patch("/v3/user/webhooks/event/settings/signed", json={"enabled": False})
    assert signed_off.json()["public_key"] == ""


def test_twilio_number_sms_url_receives_incoming_messages(twilio, twilio_http, receiver):
    listed = twilio_http.get(
        f"{TW}/IncomingPhoneNumbers.json", params={"PhoneNumber": credentials.TWILIO_FROM_NUMBER}
    )
    (number,) = listed.json()["incoming_phone_numbers"]
    assert number["sms_url"] == ""
    updated = twilio_http.post(
        f"{TW}/IncomingPhoneNumbers/{number['sid']}.json",
        data={"SmsUrl": f"{receiver.url}/tw", "SmsMethod": "POST"},
    )
    assert updated.json()["sms_url"] == f"{receiver.url}/tw"
    assert (
        twilio_http.get(f"{TW}/IncomingPhoneNumbers.json", params={"PhoneNumber": "+15005550999"}).json()[
            "incoming_phone_numbers"
        ]
        == []
    )
    twilio.control.inbound_sms("+447700900123", "STOP")
    twilio.control.wait_for_webhooks(1)
    (delivery,) = twilio.control.webhook_deliveries()
    assert delivery["url"] == f"{receiver.url}/tw"
