"""Stripe webhook signatures, as Stripe specifies them.

``Stripe-Signature: t=1700000000,v1=<hex>,v1=<hex>,v0=<hex>``: ``v1`` is HMAC-SHA256 keyed with the
endpoint secret over ``"{t}.{raw body}"``. Several ``v1`` values appear while Stripe rolls a secret;
other schemes (``v0``, a test-mode scheme) are ignored. The timestamp must be within the tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from tidings.webhooks.errors import WebhookSignatureInvalid

PROVIDER = "stripe"
SIGNATURE_HEADER = "stripe-signature"
DEFAULT_TOLERANCE_SECONDS = 300


def parse_signature_header(header: str) -> tuple[int, list[str]]:
    """``(timestamp, v1 signatures)``; raises ``WebhookSignatureInvalid`` when the header is unusable."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not (value.isascii() and value.isdigit()) or timestamp is not None:  # "²" is a digit too
                raise WebhookSignatureInvalid("malformed_header", provider=PROVIDER)
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookSignatureInvalid("malformed_header", provider=PROVIDER)
    return timestamp, signatures


def verify_stripe_signature(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """Return the signed timestamp if one ``v1`` matches one of ``secrets``; raise otherwise."""
    if not header:
        raise WebhookSignatureInvalid("missing_header", provider=PROVIDER)
    timestamp, signatures = parse_signature_header(header)
    if not payload:
        raise WebhookSignatureInvalid("empty_body", provider=PROVIDER)
    if abs(now - timestamp) > tolerance:
        raise WebhookSignatureInvalid("timestamp_outside_tolerance", provider=PROVIDER)
    signed = str(timestamp).encode() + b"." + payload
    for secret in secrets:
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode()
        # Constant-time compare: timing reveals nothing about how much of a forged signature is right.
        if any(hmac.compare_digest(expected, candidate.encode()) for candidate in signatures):
            return timestamp
    raise WebhookSignatureInvalid("no_matching_signature", provider=PROVIDER)
