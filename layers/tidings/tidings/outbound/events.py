"""The status events a shop receives, made from the notification table's change stream.

Each change of a notification's ``META`` item (a DynamoDB stream record with the old and the new image)
gives zero or more events:

* ``notification.channel.updated``: a channel's status changed (``pending`` -> ``sent`` ->
  ``delivered``, ``parked``, ``rejected``, ``skipped``..., whatever status the store writes);
* ``notification.finished``: the notification reached a final status (``delivered``, ``compensated``,
  ... ``tidings.notifications.models.FINAL_STATUSES``), including a later change of final status (a
  refund after the saga ended, a reconciled charge).

An event carries ids, statuses and reasons, the amount and currency, and masked recipients at most
(``j***@example.com``, ``+44********89``): never a name, a full address or number, nor receipt or SMS
text. Its id (``webhook-id``) is derived from what happened, not drawn at random, so a stream record
processed twice, or a callback tried again, carries the same id and a receiver deduplicates by it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from tidings.notifications.models import FINAL_STATUSES
from tidings.observability import mask_email, mask_phone

EventType = Literal["notification.channel.updated", "notification.finished"]
CHANNEL_UPDATED: EventType = "notification.channel.updated"
FINISHED: EventType = "notification.finished"

#: EventBridge detail-type per event type.
DETAIL_TYPES: dict[str, str] = {
    CHANNEL_UPDATED: "Notification Channel Updated",
    FINISHED: "Notification Finished",
}

_FINAL = frozenset(status.value for status in FINAL_STATUSES)
_META_PK = "NOTIFICATION#"


class StatusEvent(BaseModel):
    """One event: the callback's JSON body (Standard Webhooks' ``type``/``timestamp``/``data``) and the
    EventBridge detail alike, plus where its callback goes (never part of the body)."""

    model_config = ConfigDict(frozen=True)

    id: str
    type: EventType
    timestamp: str
    data: dict[str, Any]
    callback_url: str | None = None

    def body(self) -> str:
        """The exact bytes signed and sent (compact JSON, keys in a stable order)."""
        return json.dumps(self.model_dump(mode="json", exclude={"callback_url"}), separators=(",", ":"))


def event_id(*parts: str) -> str:
    """``msg_`` + 32 hex digits of SHA-256 over what identifies the event."""
    return "msg_" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _recipient(channel: str, customer: Mapping[str, Any]) -> str | None:
    if channel == "email" and customer.get("email"):
        return mask_email(str(customer["email"]))
    if channel == "sms" and customer.get("phone"):
        return mask_phone(str(customer["phone"]))
    return None


def _channel_view(channel: str, record: Mapping[str, Any], customer: Mapping[str, Any]) -> dict[str, Any]:
    view = {
        "status": record.get("status", "pending"),
        "reason": record.get("reason"),
        "provider": record.get("provider"),
        "fallback": record.get("fallback"),
        "delivery_status": record.get("delivery_status"),
        "recipient": _recipient(channel, customer),
    }
    return {key: value for key, value in view.items() if value is not None}


def _payment_view(payment: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("status", "amount", "currency", "payment_intent_id", "refund_id", "refund_status")
    return {key: payment[key] for key in keys if payment.get(key) is not None}


def events_for_change(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[StatusEvent]:
    """The events one change of a notification's item gives (plain values: a deserialised image)."""
    if not old or not new or not str(new.get("pk", "")).startswith(_META_PK) or new.get("sk") != "META":
        return []  # a new notification (nothing happened yet), a removal, or not a notification
    notification_id = str(new["notification_id"])
    customer = new.get("customer") or {}
    at = str(new.get("updated_at") or new.get("created_at") or "")
    common = {
        "notification_id": notification_id,
        "order_reference": new.get("order_reference"),
        "status": new.get("status"),
    }
    callback_url = new.get("callback_url")
    found: list[StatusEvent] = []
    old_channels = old.get("channels") or {}
    for channel, record in sorted((new.get("channels") or {}).items()):
        before = (old_channels.get(channel) or {}).get("status", "pending")
        after = record.get("status", "pending")
        if after == before:
            continue
        view = _channel_view(channel, record, customer)
        data = {
            **common,
            "channel": channel,
            "channel_status": view.pop("status"),
            "previous_channel_status": before,
            **view,
        }
        found.append(
            StatusEvent(
                id=event_id(notification_id, CHANNEL_UPDATED, channel, str(after)),
                type=CHANNEL_UPDATED,
                timestamp=str(record.get("updated_at") or at),
                data=data,
                callback_url=callback_url,
            )
        )
    status = str(new.get("status"))
    finished_at = str(new.get("finished_at") or at)
    if status in _FINAL and (old.get("status") != status or old.get("finished_at") != new.get("finished_at")):
        data = {
            **common,
            "status_reason": new.get("status_reason"),
            "finished_at": finished_at,
            "payment": _payment_view(new.get("payment") or {}),
            "channels": {
                name: _channel_view(name, record, customer)
                for name, record in sorted((new.get("channels") or {}).items())
            },
        }
        found.append(
            StatusEvent(
                id=event_id(notification_id, FINISHED, status, finished_at),
                type=FINISHED,
                timestamp=finished_at,
                data={key: value for key, value in data.items() if value is not None},
                callback_url=callback_url,
            )
        )
    return found


def events_for_stream_record(record: Mapping[str, Any]) -> list[StatusEvent]:
    """The events of one DynamoDB stream record (``NEW_AND_OLD_IMAGES``)."""
    change = record.get("dynamodb") or {}
    return events_for_change(_image(change.get("OldImage")), _image(change.get("NewImage")))


def _image(image: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not image:
        return None
    from boto3.dynamodb.types import TypeDeserializer

    from tidings.notifications.store import plain

    deserializer = TypeDeserializer()
    return {key: plain(deserializer.deserialize(value)) for key, value in image.items()}
