"""SendGrid signed Event Webhook, as SendGrid specifies it.

ECDSA P-256 with SHA-256 over ``timestamp + raw body``; the signature (base64 DER) comes in
``X-Twilio-Email-Event-Webhook-Signature`` and the timestamp in ``X-Twilio-Email-Event-Webhook-Timestamp``.
The public key is configured as SendGrid shows it (base64 DER SubjectPublicKeyInfo; PEM also accepted).
SendGrid's scheme has no replay window of its own: the same tolerance as Stripe's is applied.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from tidings.webhooks.errors import WebhookSignatureInvalid

PROVIDER = "sendgrid"
SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
DEFAULT_TOLERANCE_SECONDS = 300


@lru_cache(maxsize=8)
def load_public_key(configured: str) -> ec.EllipticCurvePublicKey:
    """Parse a configured key once per container; a wrong key is a configuration fault (ValueError)."""
    text = configured.strip()
    key = (
        load_pem_public_key(text.encode())
        if text.startswith("-----BEGIN")
        else load_der_public_key(base64.b64decode(text))
    )
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("SendGrid webhook key must be an EC P-256 public key")
    return key


def verify_sendgrid_signature(
    payload: bytes,
    signature: str | None,
    timestamp: str | None,
    public_keys: Sequence[str],
    *,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """Return the signed timestamp if the signature verifies with one of ``public_keys``; raise otherwise."""
    if not signature or not timestamp:
        raise WebhookSignatureInvalid("missing_header", provider=PROVIDER)
    timestamp = timestamp.strip()
    if not (timestamp.isascii() and timestamp.isdigit()):  # "²" is a digit too, but not an int
        raise WebhookSignatureInvalid("malformed_header", provider=PROVIDER)
    try:
        der_signature = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookSignatureInvalid("malformed_header", provider=PROVIDER) from exc
    if not payload:
        raise WebhookSignatureInvalid("empty_body", provider=PROVIDER)
    if abs(now - int(timestamp)) > tolerance:
        raise WebhookSignatureInvalid("timestamp_outside_tolerance", provider=PROVIDER)
    signed = timestamp.encode() + payload
    for configured in public_keys:
        try:
            load_public_key(configured).verify(der_signature, signed, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        return int(timestamp)
    raise WebhookSignatureInvalid("no_matching_signature", provider=PROVIDER)
