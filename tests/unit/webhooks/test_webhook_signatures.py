"""Signature verification for each provider: valid passes, every kind of forgery or damage fails."""

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.webhook_signing import NOW, form, stripe_header, twilio_signature

from tidings.webhooks.errors import WebhookSignatureInvalid
from tidings.webhooks.sendgrid import verify_sendgrid_signature
from tidings.webhooks.stripe import verify_stripe_signature
from tidings.webhooks.twilio import verify_twilio_signature

pytestmark = pytest.mark.unit

STRIPE_SECRET = "whsec_test_current"
TWILIO_TOKEN = "twilio-auth-token-current"
STRIPE_BODY = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded"}).encode()


def reason_of(call) -> str:
    with pytest.raises(WebhookSignatureInvalid) as caught:
        call()
    return caught.value.reason


# --- Stripe -------------------------------------------------------------------------------------


def test_stripe_valid_signature_passes_and_returns_the_signed_time():
    header = stripe_header(STRIPE_BODY, STRIPE_SECRET)
    assert verify_stripe_signature(STRIPE_BODY, header, [STRIPE_SECRET], now=NOW) == NOW


def test_stripe_accepts_any_of_several_v1_and_ignores_other_schemes():
    # Given a header as Stripe sends it during its own secret roll: an old v1, a v0, then the good v1
    good = stripe_header(STRIPE_BODY, STRIPE_SECRET).split(",")[1]
    header = f"t={NOW},v1={'0' * 64},v0={'f' * 64},{good}"
    assert verify_stripe_signature(STRIPE_BODY, header, [STRIPE_SECRET], now=NOW) == NOW


def test_stripe_signature_only_in_an_unknown_scheme_is_malformed():
    v1 = stripe_header(STRIPE_BODY, STRIPE_SECRET).split("v1=")[1]
    header = f"t={NOW},v0={v1}"
    assert reason_of(lambda: verify_stripe_signature(STRIPE_BODY, header, [STRIPE_SECRET], now=NOW)) == (
        "malformed_header"
    )


@pytest.mark.parametrize(
    ("description", "body", "header", "secrets", "now", "reason"),
    [
        ("tampered body", STRIPE_BODY + b" ", None, [STRIPE_SECRET], NOW, "no_matching_signature"),
        ("wrong secret", STRIPE_BODY, None, ["whsec_someone_else"], NOW, "no_matching_signature"),
        ("expired", STRIPE_BODY, None, [STRIPE_SECRET], NOW + 301, "timestamp_outside_tolerance"),
        ("from the future", STRIPE_BODY, None, [STRIPE_SECRET], NOW - 301, "timestamp_outside_tolerance"),
        ("missing header", STRIPE_BODY, "", [STRIPE_SECRET], NOW, "missing_header"),
        ("no v1", STRIPE_BODY, f"t={NOW}", [STRIPE_SECRET], NOW, "malformed_header"),
        ("no t", STRIPE_BODY, "v1=abc", [STRIPE_SECRET], NOW, "malformed_header"),
        ("garbage", STRIPE_BODY, "not a signature header", [STRIPE_SECRET], NOW, "malformed_header"),
        ("t not a number", STRIPE_BODY, "t=yesterday,v1=00", [STRIPE_SECRET], NOW, "malformed_header"),
        ("empty body", b"", None, [STRIPE_SECRET], NOW, "empty_body"),
    ],
)
def test_stripe_rejections(description, body, header, secrets, now, reason):
    # Given a header signed over the original body at NOW unless the case brings its own
    header = stripe_header(STRIPE_BODY, STRIPE_SECRET) if header is None else header
    if description == "empty body":
        header = stripe_header(b"", STRIPE_SECRET)
    # Then verification fails for exactly that reason
    assert reason_of(lambda: verify_stripe_signature(body, header, secrets, now=now)) == reason


def test_stripe_tampered_timestamp_fails_even_inside_the_window():
    # Given a genuine signature whose t= was moved by one second (still inside the tolerance)
    header = stripe_header(STRIPE_BODY, STRIPE_SECRET).replace(f"t={NOW}", f"t={NOW + 1}")
    assert reason_of(lambda: verify_stripe_signature(STRIPE_BODY, header, [STRIPE_SECRET], now=NOW)) == (
        "no_matching_signature"
    )


def test_stripe_tolerance_boundary_is_inclusive():
    header = stripe_header(STRIPE_BODY, STRIPE_SECRET)
    assert verify_stripe_signature(STRIPE_BODY, header, [STRIPE_SECRET], now=NOW + 300) == NOW


@given(body=st.binary(min_size=1, max_size=512), flip=st.integers(min_value=0, max_value=511))
def test_stripe_any_body_verifies_and_any_single_bit_flip_fails(body, flip):
    header = stripe_header(body, STRIPE_SECRET)
    assert verify_stripe_signature(body, header, [STRIPE_SECRET], now=NOW) == NOW
    index = flip % len(body)
    tampered = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
    assert reason_of(lambda: verify_stripe_signature(tampered, header, [STRIPE_SECRET], now=NOW)) == (
        "no_matching_signature"
    )


# --- Twilio -------------------------------------------------------------------------------------

TWILIO_URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/twilio?notification_id=n-1"
TWILIO_PARAMS = {
    "MessageSid": "SM" + "a" * 32,
    "MessageStatus": "delivered",
    "AccountSid": "AC" + "0" * 32,
    "ErrorCode": "",  # blank values are signed too
    "ApiVersion": "2010-04-01",
}


def test_twilio_valid_form_signature_passes_and_returns_the_params():
    signature = twilio_signature(TWILIO_URL, TWILIO_PARAMS, TWILIO_TOKEN)
    params = verify_twilio_signature(TWILIO_URL, form(TWILIO_PARAMS), signature, [TWILIO_TOKEN])
    assert params["MessageStatus"] == ["delivered"]
    assert params["ErrorCode"] == [""]


def test_twilio_parameter_order_in_the_body_does_not_matter():
    reordered = dict(reversed(list(TWILIO_PARAMS.items())))
    signature = twilio_signature(TWILIO_URL, TWILIO_PARAMS, TWILIO_TOKEN)
    params = verify_twilio_signature(TWILIO_URL, form(reordered), signature, [TWILIO_TOKEN])
    assert params == {name: [value] for name, value in TWILIO_PARAMS.items()}


@pytest.mark.parametrize(
    ("signed_url", "called_url"),
    [
        ("https://hooks.example.com:443/webhooks/twilio", "https://hooks.example.com/webhooks/twilio"),
        ("https://hooks.example.com/webhooks/twilio", "https://hooks.example.com:443/webhooks/twilio"),
    ],
)
def test_twilio_default_port_quirk_is_accepted_both_ways(signed_url, called_url):
    signature = twilio_signature(signed_url, TWILIO_PARAMS, TWILIO_TOKEN)
    params = verify_twilio_signature(called_url, form(TWILIO_PARAMS), signature, [TWILIO_TOKEN])
    assert params == {name: [value] for name, value in TWILIO_PARAMS.items()}


def test_twilio_non_default_port_is_not_interchangeable():
    signed_url = "https://hooks.example.com:8443/webhooks/twilio"
    signature = twilio_signature(signed_url, TWILIO_PARAMS, TWILIO_TOKEN)
    called = "https://hooks.example.com/webhooks/twilio"
    assert reason_of(
        lambda: verify_twilio_signature(called, form(TWILIO_PARAMS), signature, [TWILIO_TOKEN])
    ) == ("no_matching_signature")


@pytest.mark.parametrize(
    ("description", "url", "body", "token", "reason"),
    [
        ("another URL", TWILIO_URL.replace("n-1", "n-2"), None, TWILIO_TOKEN, "no_matching_signature"),
        (
            "another path",
            TWILIO_URL.replace("/twilio", "/stripe"),
            None,
            TWILIO_TOKEN,
            "no_matching_signature",
        ),
        ("tampered status", TWILIO_URL, {"MessageStatus": "failed"}, TWILIO_TOKEN, "no_matching_signature"),
        ("added param", TWILIO_URL, {"Extra": "1"}, TWILIO_TOKEN, "no_matching_signature"),
        ("wrong token", TWILIO_URL, None, "someone-elses-token", "no_matching_signature"),
    ],
)
def test_twilio_rejections(description, url, body, token, reason):
    signature = twilio_signature(TWILIO_URL, TWILIO_PARAMS, TWILIO_TOKEN)
    sent = form({**TWILIO_PARAMS, **(body or {})})
    assert reason_of(lambda: verify_twilio_signature(url, sent, signature, [token])) == reason


def test_twilio_missing_header_and_empty_body_fail():
    signature = twilio_signature(TWILIO_URL, {}, TWILIO_TOKEN)
    body = form(TWILIO_PARAMS)
    assert (
        reason_of(lambda: verify_twilio_signature(TWILIO_URL, body, None, [TWILIO_TOKEN])) == "missing_header"
    )
    assert reason_of(lambda: verify_twilio_signature(TWILIO_URL, b"", signature, [TWILIO_TOKEN])) == (
        "empty_body"
    )


def test_twilio_malformed_signature_header_fails():
    assert reason_of(
        lambda: verify_twilio_signature(TWILIO_URL, form(TWILIO_PARAMS), "%%%not-base64%%%", [TWILIO_TOKEN])
    ) == ("no_matching_signature")


def test_twilio_json_body_is_bound_by_the_body_hash_in_the_signed_url():
    # Given a JSON body: Twilio puts its SHA-256 in the URL and signs the URL alone
    body = json.dumps({"MessageSid": "SM1", "MessageStatus": "delivered"}).encode()
    url = f"https://hooks.example.com/webhooks/twilio?bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = twilio_signature(url, {}, TWILIO_TOKEN)
    # Then the genuine body passes
    verified = verify_twilio_signature(url, body, signature, [TWILIO_TOKEN], content_type="application/json")
    assert verified == {}
    # And a changed body fails on the hash even though the URL signature is genuine
    tampered = body.replace(b"delivered", b"failed   ")
    assert reason_of(lambda: verify_twilio_signature(url, tampered, signature, [TWILIO_TOKEN])) == (
        "body_hash_mismatch"
    )


def test_twilio_json_body_without_a_body_hash_cannot_be_verified():
    body = b'{"MessageStatus": "delivered"}'
    signature = twilio_signature(TWILIO_URL, {}, TWILIO_TOKEN)
    assert reason_of(
        lambda: verify_twilio_signature(
            TWILIO_URL, body, signature, [TWILIO_TOKEN], content_type="application/json; charset=utf-8"
        )
    ) == ("body_hash_missing")


PRINTABLE = st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"])


@given(
    params=st.dictionaries(
        st.text(alphabet=PRINTABLE, min_size=1, max_size=12),
        st.text(alphabet=PRINTABLE, max_size=20),
        min_size=1,
        max_size=8,
    )
)
def test_twilio_any_form_verifies(params):
    signature = twilio_signature(TWILIO_URL, params, TWILIO_TOKEN)
    verified = verify_twilio_signature(TWILIO_URL, form(params), signature, [TWILIO_TOKEN])
    assert verified == {name: [value] for name, value in params.items()}


# --- SendGrid -----------------------------------------------------------------------------------

SENDGRID_BODY = json.dumps(
    [{"email": "someone@example.com", "event": "delivered", "sg_event_id": "ev1", "timestamp": NOW}]
).encode()


def test_sendgrid_valid_signature_passes(sendgrid_keys):
    signature, timestamp = sendgrid_keys.sign(SENDGRID_BODY)
    keys = [sendgrid_keys.public_key_b64]
    assert verify_sendgrid_signature(SENDGRID_BODY, signature, timestamp, keys, now=NOW) == NOW


def test_sendgrid_accepts_the_key_as_pem_too(sendgrid_keys):
    from cryptography.hazmat.primitives import serialization

    pem = (
        sendgrid_keys.private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    signature, timestamp = sendgrid_keys.sign(SENDGRID_BODY)
    assert verify_sendgrid_signature(SENDGRID_BODY, signature, timestamp, [pem], now=NOW) == NOW


@pytest.mark.parametrize(
    ("description", "reason"),
    [
        ("tampered body", "no_matching_signature"),
        ("tampered timestamp", "no_matching_signature"),
        ("wrong key", "no_matching_signature"),
        ("expired", "timestamp_outside_tolerance"),
        ("missing signature", "missing_header"),
        ("missing timestamp", "missing_header"),
        ("signature not base64", "malformed_header"),
        ("signature not DER", "no_matching_signature"),
        ("timestamp not a number", "malformed_header"),
        ("empty body", "empty_body"),
    ],
)
def test_sendgrid_rejections(description, reason, sendgrid_keys, other_sendgrid_keys):
    body, now, keys = SENDGRID_BODY, NOW, [sendgrid_keys.public_key_b64]
    signature, timestamp = sendgrid_keys.sign(body)
    match description:
        case "tampered body":
            body = body.replace(b"delivered", b"bounce")
        case "tampered timestamp":
            timestamp = str(NOW + 1)
        case "wrong key":
            keys = [other_sendgrid_keys.public_key_b64]
        case "expired":
            now = NOW + 301
        case "missing signature":
            signature = None
        case "missing timestamp":
            timestamp = ""
        case "signature not base64":
            signature = "***"
        case "signature not DER":
            signature = "AAAA"
        case "timestamp not a number":
            timestamp = "soon"
        case "empty body":
            body = b""
            signature, timestamp = sendgrid_keys.sign(body)
    assert reason_of(lambda: verify_sendgrid_signature(body, signature, timestamp, keys, now=now)) == reason


def test_a_configured_key_that_is_not_p256_is_a_configuration_error():
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    der = p384.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ValueError, match="P-256"):
        verify_sendgrid_signature(SENDGRID_BODY, "AAAA", str(NOW), [base64.b64encode(der).decode()], now=NOW)


def test_rejection_carries_no_detail_beyond_the_reason_code():
    with pytest.raises(WebhookSignatureInvalid) as caught:
        verify_stripe_signature(STRIPE_BODY, "t=1,v1=00", [STRIPE_SECRET], now=NOW)
    described = caught.value.to_dict()
    assert described["message"] == "invalid signature"
    assert described["error_type"] == "WebhookSignatureInvalid"
    assert STRIPE_SECRET not in json.dumps(described)
