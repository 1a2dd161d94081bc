"""Random bytes never crash a webhook verifier or parser, and never verify.

A verifier either returns (the request is genuine) or raises ``WebhookSignatureInvalid``; a parser
either returns events or raises ``InvalidRequest``; building the request from an API Gateway event
either works or raises ``ValueError``. Anything else would be a 500 and a retry storm from the provider.
"""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.webhook_signing import NOW, SendGridKeyPair

from tidings.errors import InvalidRequest
from tidings.webhooks.errors import WebhookSignatureInvalid
from tidings.webhooks.models import parse_sendgrid_events, parse_stripe_event, parse_twilio_callback
from tidings.webhooks.receiver import verify_and_normalise
from tidings.webhooks.request import WebhookRequest
from tidings.webhooks.sendgrid import verify_sendgrid_signature
from tidings.webhooks.stripe import parse_signature_header, verify_stripe_signature
from tidings.webhooks.twilio import parse_form, verify_twilio_signature

pytestmark = [pytest.mark.unit, pytest.mark.contract]

SECRET = "whsec_test_current"
TOKEN = "twilio-auth-token-current"
KEYS = SendGridKeyPair()
FUZZ = settings(max_examples=300, deadline=None)

TEXT = st.text(max_size=200)
BYTES = st.binary(max_size=400)
#: header-like text: printable, with the separators the parsers split on
HEADERISH = (
    st.text(alphabet=st.sampled_from("tv01=,.;: \t²٣abcdef-_+/"), max_size=120) | TEXT | st.just("t=²,v1=00")
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


def refuses(call) -> None:
    with pytest.raises(WebhookSignatureInvalid):
        call()


@FUZZ
@given(body=BYTES, header=HEADERISH, now=st.integers(min_value=0, max_value=2**40))
def test_stripe_verifier_refuses_random_requests(body, header, now):
    refuses(lambda: verify_stripe_signature(body, header, [SECRET], now=now))


@FUZZ
@given(header=HEADERISH)
def test_stripe_header_parser_never_crashes(header):
    try:
        timestamp, signatures = parse_signature_header(header)
    except WebhookSignatureInvalid:
        return
    assert isinstance(timestamp, int)
    assert signatures


@FUZZ
@given(body=BYTES, signature=HEADERISH, timestamp=HEADERISH)
def test_sendgrid_verifier_refuses_random_requests(body, signature, timestamp):
    refuses(lambda: verify_sendgrid_signature(body, signature, timestamp, [KEYS.public_key_b64], now=NOW))


@FUZZ
@given(body=BYTES, timestamp=st.just(str(NOW)), signature=st.binary(min_size=1, max_size=80))
def test_sendgrid_verifier_refuses_random_der_signatures(body, timestamp, signature):
    import base64

    refuses(
        lambda: verify_sendgrid_signature(
            body, base64.b64encode(signature).decode(), timestamp, [KEYS.public_key_b64], now=NOW
        )
    )


URLISH = st.text(alphabet=st.sampled_from("htps:/[]@?&=#%.:0123456789abcxyz"), max_size=60) | TEXT


@FUZZ
@given(
    url=URLISH | st.just("https://hooks.example.com/webhooks/twilio"),
    body=BYTES,
    header=HEADERISH,
    content_type=st.none()
    | st.sampled_from(["application/json", "application/x-www-form-urlencoded"])
    | TEXT,
)
def test_twilio_verifier_refuses_random_requests(url, body, header, content_type):
    refuses(lambda: verify_twilio_signature(url, body, header, [TOKEN], content_type=content_type))


@FUZZ
@given(body=BYTES)
def test_twilio_form_parser_never_crashes(body):
    try:
        params = parse_form(body)
    except WebhookSignatureInvalid:
        return
    assert all(isinstance(v, list) for v in params.values())


STRIPE_TYPES = st.sampled_from(
    [
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "charge.refunded",
    ]
)


@FUZZ
@given(
    payload=BYTES
    | JSON.map(lambda v: json.dumps(v).encode())
    | st.fixed_dictionaries(
        {"id": st.text(max_size=10) | JSON, "type": STRIPE_TYPES | JSON, "data": JSON, "created": JSON},
    ).map(lambda v: json.dumps(v).encode())
    | st.fixed_dictionaries(
        {"id": st.just("evt_1"), "type": STRIPE_TYPES, "data": st.fixed_dictionaries({"object": JSON})}
    ).map(lambda v: json.dumps(v).encode())
    | st.fixed_dictionaries(
        {
            "id": st.just("evt_1"),
            "type": STRIPE_TYPES,
            "data": st.fixed_dictionaries(
                {
                    "object": st.fixed_dictionaries(
                        {"id": st.just("pi_1"), "metadata": JSON, "last_payment_error": JSON}
                    )
                }
            ),
        }
    ).map(lambda v: json.dumps(v).encode())
)
def test_stripe_event_parser_never_crashes(payload):
    with contextlib.suppress(InvalidRequest):
        parse_stripe_event(payload, received_at=NOW)


@FUZZ
@given(
    payload=BYTES
    | JSON.map(lambda v: json.dumps(v).encode())
    | st.lists(
        st.fixed_dictionaries(
            {"sg_event_id": st.text(max_size=8), "event": st.sampled_from(["delivered", "bounce"]) | JSON},
            optional={"type": JSON, "timestamp": JSON, "sg_message_id": JSON, "notification_id": JSON},
        ),
        max_size=4,
    ).map(lambda v: json.dumps(v).encode())
)
def test_sendgrid_event_parser_never_crashes(payload):
    with contextlib.suppress(InvalidRequest):
        parse_sendgrid_events(payload, received_at=NOW)


@FUZZ
@given(body=BYTES, query=TEXT)
def test_twilio_callback_parser_never_crashes(body, query):
    try:
        params = parse_form(body)
    except WebhookSignatureInvalid:
        return
    request = WebhookRequest(body=body, url="https://h.example/webhooks/twilio?" + query)
    with contextlib.suppress(InvalidRequest):
        parse_twilio_callback(params, request.query, received_at=NOW)


@FUZZ
@given(
    provider=st.sampled_from(["stripe", "sendgrid", "twilio"]),
    body=BYTES,
    headers=st.dictionaries(
        st.sampled_from(
            [
                "stripe-signature",
                "x-twilio-signature",
                "x-twilio-email-event-webhook-signature",
                "x-twilio-email-event-webhook-timestamp",
                "content-type",
            ]
        ),
        HEADERISH,
    ),
    url=URLISH,
)
def test_random_requests_never_verify_through_the_receiver(provider, body, headers, url):
    keys = {"stripe": [SECRET], "sendgrid": [KEYS.public_key_b64], "twilio": [TOKEN]}[provider]
    request = WebhookRequest(body=body, headers=headers, url=url)
    refuses(lambda: verify_and_normalise(provider, request, keys, now=NOW))


@FUZZ
@given(
    body=TEXT,
    base64=st.booleans(),
    headers=st.dictionaries(st.sampled_from(["host", "x-forwarded-proto", "Host", "content-type"]), TEXT),
    raw_path=st.none() | TEXT,
    query=st.none() | TEXT,
    stage=st.none() | TEXT,
)
def test_an_api_gateway_event_becomes_a_request_or_a_value_error(
    body, base64, headers, raw_path, query, stage
):
    event = {
        "body": body,
        "isBase64Encoded": base64,
        "headers": headers,
        "rawPath": raw_path,
        "rawQueryString": query,
        "requestContext": {"stage": stage, "domainName": "api.example.com"},
    }
    try:
        request = WebhookRequest.from_http_api_event(event)
    except ValueError:
        return
    assert isinstance(request.body, bytes)
    # whatever the URL came to be, a Twilio verification of it only ever refuses
    refuses(lambda: verify_twilio_signature(request.url, request.body or b"x", "sig", [TOKEN]))
