"""Standard Webhooks signing of the shop's callbacks, checked against the reference library.

The ``standardwebhooks`` package (the specification's own Python implementation, a dev dependency) signs
and verifies independently of ``tidings.outbound.signing``: what Tidings sends, the reference verifies,
and what the reference signs, Tidings' verifier accepts.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tidings.outbound import signing

pytestmark = pytest.mark.unit

BODY = json.dumps(
    {"type": "notification.finished", "data": {"notification_id": "ntf_1", "status": "delivered"}}
)


def test_a_signed_callback_verifies_with_the_reference_library() -> None:
    # Given a new secret and a callback signed by Tidings now
    secret = signing.generate_secret()
    now = int(time.time())
    headers = signing.sign([secret], "msg_abc", now, BODY)

    # When the reference library verifies it, Then the body comes back
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    assert headers["webhook-id"] == "msg_abc"
    assert headers["webhook-timestamp"] == str(now)


def test_the_reference_library_refuses_a_tampered_body_or_another_secret() -> None:
    secret = signing.generate_secret()
    headers = signing.sign([secret], "msg_abc", int(time.time()), BODY)

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace("delivered", "failed"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.generate_secret()).verify(BODY, headers)


def test_a_roll_sends_two_signatures_and_a_receiver_with_either_secret_verifies() -> None:
    # Given a key roll in progress: the new secret and the previous one both sign
    new, previous = signing.generate_secret(), signing.generate_secret()
    headers = signing.sign([new, previous], "msg_roll", int(time.time()), BODY)

    # Then two v1 signatures go out, and each receiver verifies with the secret it holds
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, previous):
        Webhook(secret).verify(BODY, headers)
        assert signing.verify(BODY, headers, secret) == "msg_roll"


def test_the_verifier_accepts_what_the_reference_library_signs() -> None:
    secret = signing.generate_secret()
    moment = datetime.now(UTC)
    reference_signature = Webhook(secret).sign("msg_ref", moment, BODY)
    headers = {
        "Webhook-Id": "msg_ref",  # header names are case-insensitive
        "Webhook-Timestamp": str(int(moment.timestamp())),
        "Webhook-Signature": f"v2,ignored {reference_signature}",
    }

    assert signing.verify(BODY, headers, secret) == "msg_ref"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"webhook-id": ""}, "missing_header"),
        ({"webhook-timestamp": "soon"}, "malformed_header"),
        ({"webhook-timestamp": "1000"}, "timestamp_outside_tolerance"),
        ({"webhook-signature": "v1,AAAA"}, "no_matching_signature"),
        ({"webhook-signature": "v2,whatever"}, "no_matching_signature"),
    ],
)
def test_the_verifier_names_why_it_refuses(change: dict[str, str], reason: str) -> None:
    secret = signing.generate_secret()
    headers = signing.sign([secret], "msg_x", int(time.time()), BODY) | change

    with pytest.raises(signing.SignatureInvalid) as refused:
        signing.verify(BODY, headers, secret)
    assert refused.value.reason == reason


def test_the_timestamp_tolerance_is_the_reference_five_minutes_and_configurable() -> None:
    secret = signing.generate_secret()
    headers = signing.sign([secret], "msg_t", 1_000_000, BODY)

    assert signing.verify(BODY, headers, secret, now=1_000_000 + 299) == "msg_t"
    with pytest.raises(signing.SignatureInvalid):
        signing.verify(BODY, headers, secret, now=1_000_000 + 301)
    assert signing.verify(BODY, headers, secret, now=1_000_000 + 3_000, tolerance_seconds=3_600) == "msg_t"


@pytest.mark.parametrize(
    "bad",
    ["", "abc", "whsec_", "whsec_not base64!", "whsec_" + base64.b64encode(b"short").decode()],
)
def test_a_malformed_secret_is_refused_without_showing_it(bad: str) -> None:
    with pytest.raises(signing.SigningSecretInvalid) as refused:
        signing.secret_key(bad)
    assert refused.value.reason
    if len(bad) > 6:
        assert bad[6:] not in str(refused.value)


def test_signing_without_any_secret_is_refused() -> None:
    with pytest.raises(signing.SigningSecretInvalid):
        signing.sign([], "msg_none", 1, BODY)


def test_a_generated_secret_holds_32_random_bytes() -> None:
    first, second = signing.generate_secret(), signing.generate_secret()
    assert first.startswith("whsec_")
    assert first != second
    assert len(signing.secret_key(first)) == 32
