"""Tidings' status callbacks on the shop's side: verify the Standard Webhooks signature, then read the event.

    from tidings_sdk.webhooks import verify_event, SignatureInvalid

    try:
        event = verify_event(raw_body, request.headers, secret)   # the whsec_... secret
    except SignatureInvalid as refused:
        return 400                                                 # refused.reason says why
    if seen_before(event.id):                                      # at least once: deduplicate by id
        return 204

The signature is checked over the raw body, before it is parsed, with the standard library only
(HMAC-SHA256, constant-time comparison, a timestamp within 5 minutes of the clock). During a key roll
Tidings signs with both keys and either verifies; a receiver rolling its own copy passes both secrets.
The events carry ids, statuses, amounts and masked recipients, never personal data (docs/callbacks.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"

SignatureRejection = Literal[
    "missing_header", "malformed_header", "timestamp_outside_tolerance", "no_matching_signature"
]


class SigningSecretInvalid(ValueError):
    """A secret that is not ``whsec_`` + base64 of 24 to 64 bytes (its value is never shown)."""


class SignatureInvalid(ValueError):
    """The callback did not verify; ``reason`` is a machine-readable code."""

    def __init__(self, reason: SignatureRejection) -> None:
        super().__init__(f"webhook signature invalid: {reason}")
        self.reason: SignatureRejection = reason


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise SigningSecretInvalid("signing secret invalid: missing the whsec_ prefix")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise SigningSecretInvalid("signing secret invalid: not base64") from None
    if not 24 <= len(key) <= 64:
        raise SigningSecretInvalid("signing secret invalid: key must be 24 to 64 bytes")
    return key


def _signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}".encode("ascii")


def verify(
    body: str | bytes,
    headers: Mapping[str, str],
    secrets: str | Iterable[str],
    *,
    now: float | None = None,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> str:
    """Check a received callback against one secret or several; its ``webhook-id``, or
    :class:`SignatureInvalid`. Header names are matched case-insensitively; signatures of versions
    other than ``v1`` are ignored."""
    keys = [_key(secret) for secret in ([secrets] if isinstance(secrets, str) else secrets)]
    if not keys:
        raise SigningSecretInvalid("signing secret invalid: none given")
    raw = body.encode("utf-8") if isinstance(body, str) else body
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id, stamp, signatures = (lowered.get(h) for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))
    if not msg_id or not stamp or not signatures:
        raise SignatureInvalid("missing_header")
    if not stamp.isdigit() or len(stamp) > 12:
        raise SignatureInvalid("malformed_header")
    timestamp = int(stamp)
    if abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        raise SignatureInvalid("timestamp_outside_tolerance")
    offered = [c.encode("ascii", "replace") for c in signatures.split(" ") if c.startswith("v1,")]
    for key in keys:
        expected = _signature(key, msg_id, timestamp, raw)
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return msg_id
    raise SignatureInvalid("no_matching_signature")


# --- the events ------------------------------------------------------------------------------------


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChannelUpdate(_Event):
    notification_id: str
    order_reference: str | None = None
    status: str | None = None
    channel: str
    channel_status: str
    previous_channel_status: str | None = None
    provider: str | None = None
    reason: str | None = None
    delivery_status: str | None = None
    recipient: str | None = Field(None, description="masked: a***@example.com, +44********23")


class FinishedPayment(_Event):
    status: str | None = None
    amount: int | None = None
    currency: str | None = None
    payment_intent_id: str | None = None
    refund_id: str | None = None
    refund_status: str | None = None


class FinishedChannel(_Event):
    status: str | None = None
    reason: str | None = None
    provider: str | None = None
    fallback: bool | None = None
    delivery_status: str | None = None
    recipient: str | None = None


class Finished(_Event):
    notification_id: str
    order_reference: str | None = None
    status: str
    status_reason: str | None = None
    finished_at: str | None = None
    payment: FinishedPayment | None = None
    channels: dict[str, FinishedChannel] = Field(default_factory=dict)


class ChannelUpdated(_Event):
    """``notification.channel.updated``: a channel's status changed."""

    id: str
    type: Literal["notification.channel.updated"]
    timestamp: str
    data: ChannelUpdate


class NotificationFinished(_Event):
    """``notification.finished``: the notification reached a final status (or moved between two)."""

    id: str
    type: Literal["notification.finished"]
    timestamp: str
    data: Finished


class OtherEvent(_Event):
    """An event type this version of the SDK does not know (verified all the same)."""

    id: str
    type: str
    timestamp: str
    data: dict[str, Any] = Field(default_factory=dict)


StatusEvent = Annotated[ChannelUpdated | NotificationFinished, Field(discriminator="type")]
_KNOWN: TypeAdapter[ChannelUpdated | NotificationFinished] = TypeAdapter(StatusEvent)
_TYPES = ("notification.channel.updated", "notification.finished")


def parse_event(body: str | bytes) -> ChannelUpdated | NotificationFinished | OtherEvent:
    """An already verified callback body as its event model."""
    other = OtherEvent.model_validate_json(body)
    if other.type not in _TYPES:
        return other
    known: ChannelUpdated | NotificationFinished = _KNOWN.validate_json(body)
    return known


def verify_event(
    body: str | bytes,
    headers: Mapping[str, str],
    secrets: str | Iterable[str],
    *,
    now: float | None = None,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> ChannelUpdated | NotificationFinished | OtherEvent:
    """:func:`verify`, then :func:`parse_event`; the event's ``id`` is the ``webhook-id``."""
    verify(body, headers, secrets, now=now, tolerance_seconds=tolerance_seconds)
    return parse_event(body)
