"""Provider webhook payloads normalised into one small model, with no personal data in it.

A ``WebhookEvent`` keeps only identifiers, the outcome and short provider codes: never an e-mail
address, phone number or message text. It is what travels on the webhook queue and into the DLQ.

Correlation: every provider echoes a ``notification_id`` that Tidings gave it when it made the call:
Stripe in the PaymentIntent's ``metadata``, SendGrid as a ``custom_args`` field (SendGrid copies custom
args onto each event), Twilio in the query string of the ``StatusCallback`` URL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tidings.errors import InvalidRequest

Provider = Literal["stripe", "sendgrid", "twilio"]
Channel = Literal["payment", "email", "sms"]

#: Query / custom-args / metadata key that carries the notification id back to us.
CORRELATION_KEY = "notification_id"
#: The API call's request id, sent with the same metadata (validated again: it came back from outside).
REQUEST_ID_KEY = "request_id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _request_id(value: Any) -> str | None:
    return value if isinstance(value, str) and _REQUEST_ID.fullmatch(value) else None


#: Stripe event types that drive the saga; others are acknowledged and ignored.
STRIPE_PAYMENT_EVENTS = {"payment_intent.succeeded": "succeeded", "payment_intent.payment_failed": "failed"}

#: SendGrid event -> channel status (None: recorded in the timeline, status untouched).
SENDGRID_STATUS: dict[str, str | None] = {
    "processed": "queued",
    "deferred": None,
    "delivered": "delivered",
    "bounce": "bounced",
    "dropped": "failed",
    "spamreport": None,
    "unsubscribe": None,
    "group_unsubscribe": None,
}

#: Twilio MessageStatus -> channel status.
TWILIO_STATUS: dict[str, str | None] = {
    "accepted": "queued",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "read": None,
}


class WebhookEvent(BaseModel):
    """One provider event, verified and normalised. ``event_id`` is its replay identity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Provider
    event_id: str = Field(min_length=1, max_length=256)
    kind: str = Field(max_length=64)
    channel: Channel
    notification_id: str | None = None
    #: The request id of the API call behind it, where the provider echoes it (Stripe metadata,
    #: SendGrid custom_args); Twilio has no field to carry it.
    request_id: str | None = None
    provider_object_id: str | None = None
    status: str | None = None
    occurred_at: int | None = None
    #: When the receiver accepted it (epoch seconds, millisecond precision): orders the timeline.
    received_at: float
    #: Short provider codes only (decline_code, bounce type, Twilio ErrorCode): never free text.
    detail: dict[str, str] = Field(default_factory=dict)

    @property
    def dedupe_key(self) -> str:
        return f"{self.provider}#{self.event_id}"


def _malformed(provider: str, field: str) -> InvalidRequest:
    return InvalidRequest("malformed webhook payload", provider=provider, field=field)


def _json(payload: bytes, provider: str) -> Any:
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise _malformed(provider, "body") from exc


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else an empty one (a field of the wrong type reads as absent)."""
    return value if isinstance(value, Mapping) else {}


def _event(provider: Provider, field: str, **values: Any) -> WebhookEvent:
    """The normalised event; a value out of its bounds (an empty or 300-character id) is a malformed
    payload, answered like any other, never an unhandled error."""
    try:
        return WebhookEvent(provider=provider, **values)
    except ValidationError as exc:
        raise _malformed(provider, field) from exc


def _code(value: Any) -> str | None:
    """A provider code kept only if it looks like a code (short, no spaces, no '@')."""
    if value is None or value == "":
        return None
    text = str(value)
    if len(text) > 64 or "@" in text or " " in text:
        return None
    return text


def parse_stripe_event(payload: bytes, *, received_at: float) -> WebhookEvent | None:
    """The Stripe event, or None for an event type Tidings does not act on."""
    body = _json(payload, "stripe")
    if not isinstance(body, Mapping) or not isinstance(body.get("id"), str):
        raise _malformed("stripe", "id")
    kind = str(body.get("type", ""))
    if kind not in STRIPE_PAYMENT_EVENTS:
        return None
    intent = _mapping(body.get("data")).get("object")
    if not isinstance(intent, Mapping) or not isinstance(intent.get("id"), str):
        raise _malformed("stripe", "data.object.id")
    metadata = _mapping(intent.get("metadata"))
    last_error = _mapping(intent.get("last_payment_error"))
    detail = {
        key: code
        for key, code in (
            ("decline_code", _code(last_error.get("decline_code"))),
            ("code", _code(last_error.get("code"))),
        )
        if code
    }
    return _event(
        "stripe",
        "id",
        event_id=body["id"],
        kind=kind,
        channel="payment",
        notification_id=_str_or_none(metadata.get(CORRELATION_KEY)),
        request_id=_request_id(metadata.get(REQUEST_ID_KEY)),
        provider_object_id=intent["id"],
        status=STRIPE_PAYMENT_EVENTS[kind],
        occurred_at=body.get("created") if isinstance(body.get("created"), int) else None,
        received_at=received_at,
        detail=detail,
    )


def parse_sendgrid_events(payload: bytes, *, received_at: float) -> list[WebhookEvent]:
    """Every item of SendGrid's JSON array that Tidings tracks (opens, clicks... are dropped)."""
    body = _json(payload, "sendgrid")
    if not isinstance(body, list):
        raise _malformed("sendgrid", "body")
    events = []
    for index, item in enumerate(body):
        if not isinstance(item, Mapping) or not isinstance(item.get("sg_event_id"), str):
            raise _malformed("sendgrid", f"[{index}].sg_event_id")
        kind = str(item.get("event", ""))
        if kind not in SENDGRID_STATUS:
            continue
        # A bounce's ``type`` tells a hard bounce ("bounce") from a block ("blocked"); keep the code only.
        bounce_type = _code(item.get("type"))
        detail = {"type": bounce_type} if bounce_type else {}
        events.append(
            _event(
                "sendgrid",
                f"[{index}].sg_event_id",
                event_id=item["sg_event_id"],
                kind=kind,
                channel="email",
                notification_id=_str_or_none(item.get(CORRELATION_KEY)),
                request_id=_request_id(item.get(REQUEST_ID_KEY)),
                provider_object_id=_str_or_none(item.get("sg_message_id")),
                status=SENDGRID_STATUS[kind],
                occurred_at=item.get("timestamp") if isinstance(item.get("timestamp"), int) else None,
                received_at=received_at,
                detail=detail,
            )
        )
    return events


def parse_twilio_callback(
    params: Mapping[str, Sequence[str]], query: Mapping[str, Sequence[str]], *, received_at: float
) -> WebhookEvent | None:
    """A Twilio status callback (form parameters); None for a status Tidings does not track."""

    def first(source: Mapping[str, Sequence[str]], name: str) -> str | None:
        values = source.get(name) or []
        return values[0] if values else None

    sid = first(params, "MessageSid") or first(params, "SmsSid")
    kind = first(params, "MessageStatus") or first(params, "SmsStatus")
    if not sid:
        raise _malformed("twilio", "MessageSid")
    if not kind:
        raise _malformed("twilio", "MessageStatus")
    if kind not in TWILIO_STATUS:
        return None
    error_code = _code(first(params, "ErrorCode"))
    return _event(
        "twilio",
        "MessageSid",
        # Twilio has no event id: a message reaches each status once, so (sid, status) identifies it.
        event_id=f"{sid}:{kind}",
        kind=kind,
        channel="sms",
        notification_id=first(query, CORRELATION_KEY),
        # The StatusCallback URL's query carries the API call's request id (Twilio keeps no metadata).
        request_id=_request_id(first(query, REQUEST_ID_KEY)),
        provider_object_id=sid,
        status=TWILIO_STATUS[kind],
        received_at=received_at,
        detail={"error_code": error_code} if error_code else {},
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
