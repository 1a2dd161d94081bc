"""Standard Webhooks signatures (https://www.standardwebhooks.com): signing the shop's callbacks and
verifying them.

Three headers go with every callback:

* ``webhook-id``: the event's id, the same on every try (the receiver deduplicates by it);
* ``webhook-timestamp``: the try's time, integer seconds since the epoch;
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">``, one per signing key,
  separated by spaces (during a key roll both the new key's and the previous key's signatures are sent,
  and a receiver holding either verifies).

A signing secret is ``whsec_`` followed by the base64 of 24 to 64 random bytes; the HMAC key is those
bytes. This module uses the standard library only, on purpose: a shop SDK copies it as it is to verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Literal

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
#: How far a callback's timestamp may be from the receiver's clock (the reference libraries' 5 minutes).
DEFAULT_TOLERANCE_SECONDS = 300
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"

SignatureRejection = Literal[
    "missing_header",
    "malformed_header",
    "timestamp_outside_tolerance",
    "no_matching_signature",
]


class SigningSecretInvalid(ValueError):
    """A signing secret that is not ``whsec_`` + base64 of 24 to 64 bytes (its value is never shown)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"signing secret invalid: {reason}")
        self.reason = reason


class SignatureInvalid(ValueError):
    """A callback failed verification; ``reason`` is a machine-readable code for logs and metrics."""

    def __init__(self, reason: SignatureRejection) -> None:
        super().__init__(f"webhook signature invalid: {reason}")
        self.reason: SignatureRejection = reason


def generate_secret(key_bytes: int = 32) -> str:
    """A new signing secret: ``whsec_`` + base64 of ``key_bytes`` random bytes."""
    if not MIN_KEY_BYTES <= key_bytes <= MAX_KEY_BYTES:
        raise SigningSecretInvalid(f"key length must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes")
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(key_bytes)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_`` secret holds."""
    if not secret.startswith(SECRET_PREFIX):
        raise SigningSecretInvalid("missing the whsec_ prefix")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise SigningSecretInvalid("not base64") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise SigningSecretInvalid(f"key must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes")
    return key


def _as_bytes(body: str | bytes) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def signature(key: bytes, msg_id: str, timestamp: int, body: str | bytes) -> str:
    """One ``v1,<base64>`` signature of ``{msg_id}.{timestamp}.{body}``."""
    signed = f"{msg_id}.{timestamp}.".encode() + _as_bytes(body)
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def sign(secrets_in_use: Iterable[str], msg_id: str, timestamp: int, body: str | bytes) -> dict[str, str]:
    """The three headers of one try, signed with every secret in use (the current one first)."""
    keys = [secret_key(secret) for secret in secrets_in_use]
    if not keys:
        raise SigningSecretInvalid("no signing secret")
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(signature(key, msg_id, timestamp, body) for key in keys),
    }


def verify(
    body: str | bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    now: float | None = None,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> str:
    """Check a received callback; returns its ``webhook-id``, raises ``SignatureInvalid`` otherwise.

    Header names are matched case-insensitively; any one matching ``v1`` signature is enough (others, of
    versions this code does not know, are ignored); the comparison takes constant time.
    """
    key = secret_key(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get(ID_HEADER)
    stamp = lowered.get(TIMESTAMP_HEADER)
    signatures = lowered.get(SIGNATURE_HEADER)
    if not msg_id or not stamp or not signatures:
        raise SignatureInvalid("missing_header")
    if not stamp.isdigit() or len(stamp) > 12:
        raise SignatureInvalid("malformed_header")
    timestamp = int(stamp)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise SignatureInvalid("timestamp_outside_tolerance")
    expected = signature(key, msg_id, timestamp, body).encode("ascii")
    for candidate in signatures.split(" "):
        if candidate.startswith(f"{SIGNATURE_VERSION},") and hmac.compare_digest(
            expected, candidate.encode("ascii", "replace")
        ):
            return msg_id
    raise SignatureInvalid("no_matching_signature")
