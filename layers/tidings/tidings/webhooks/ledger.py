"""The processor's view of the notification table (``NOTIFICATIONS_TABLE``), on DynamoDB.

It follows the notification store's key design (tidings.notifications.store):

* ``NOTIFICATION#<id>`` / ``META``: status, ``delivery_policy``, ``channels.<channel>.*``, and the
  ``payment_task_token`` while the saga waits for 3-D Secure.
* ``NOTIFICATION#<id>`` / ``EVENT#<iso time>#...``: the timeline. A webhook's entry has a key derived
  from its identity and is written with a condition, so a redelivery cannot add it twice.
* ``PAYMENT_INTENT#<pi id>`` / ``META``: which notification a PaymentIntent belongs to.

A delivery report moves ``channels.<channel>.status`` through ``NotificationStore.update_channel``, the
one forward-only status write the saga's steps use too (``delivered`` on confirmation, ``rejected`` on a
bounce or undelivered message), and keeps the provider's own word in ``delivery_status`` beside it,
written only when the status moves, so out-of-order or concurrent events never move either backwards.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from tidings.notifications.store import NotificationStore
from tidings.webhooks.models import WebhookEvent
from tidings.webhooks.processor import CHANNEL_STATUS_FOR_DELIVERY, SagaStillRunning

#: Payment statuses meaning money was taken (a refunded payment is compensated already).
_CHARGED = frozenset({"succeeded", "refunded"})
#: Statuses of a saga that has not ended yet (it would overwrite a final status set now).
_RUNNING = frozenset({"accepted", "running", "awaiting_payment_action"})
#: Notification statuses after which nothing is compensated again.
_NOTHING_TO_COMPENSATE = frozenset({"compensated", "payment_declined", "failed"})


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _meta_key(notification_id: str) -> dict[str, str]:
    return {"pk": f"NOTIFICATION#{notification_id}", "sk": "META"}


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


class DynamoNotificationLedger:
    """Implements ``processor.NotificationLedger`` on a boto3 DynamoDB ``Table``."""

    def __init__(self, table: Any) -> None:
        self._table = table
        self._store = NotificationStore(table)

    def _meta(self, notification_id: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._table.get_item(
            Key=_meta_key(notification_id), ConsistentRead=True
        ).get("Item")
        return item

    def exists(self, notification_id: str) -> bool:
        return self._meta(notification_id) is not None

    def notification_for_payment_intent(self, payment_intent_id: str) -> str | None:
        item = self._table.get_item(
            Key={"pk": f"PAYMENT_INTENT#{payment_intent_id}", "sk": "META"}, ConsistentRead=True
        ).get("Item")
        return item.get("notification_id") if item else None

    def payment_task_token(self, notification_id: str) -> str | None:
        meta = self._meta(notification_id) or {}
        return meta.get("payment_task_token")

    def clear_task_token(self, notification_id: str, task_token: str) -> None:
        """Forget the token once used, only if it is still the one we used (a new wait keeps its own)."""
        try:
            self._table.update_item(
                Key=_meta_key(notification_id),
                UpdateExpression="REMOVE payment_task_token",
                ConditionExpression="payment_task_token = :token",
                ExpressionAttributeValues={":token": task_token},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def record_webhook(self, notification_id: str, event: WebhookEvent) -> bool:
        digest = hashlib.sha256(event.dedupe_key.encode()).hexdigest()[:16]
        details: dict[str, Any] = {"event_id": event.event_id, "kind": event.kind, **event.detail}
        if event.provider_object_id:
            details["provider_object_id"] = event.provider_object_id
        if event.status:
            details["status"] = event.status
        item = {
            "pk": f"NOTIFICATION#{notification_id}",
            "sk": f"EVENT#{_iso(event.received_at)}#webhook-{digest}",
            "step": f"Webhook{event.provider.capitalize()}",
            "outcome": event.kind,
            "at": _iso(event.received_at),
            "provider": event.provider,
            "details": details,
        }
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(sk)")
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def advance_channel_status(self, notification_id: str, channel: str, status: str) -> bool:
        channel_status = CHANNEL_STATUS_FOR_DELIVERY.get(status)
        if channel_status is None:
            return False  # in the timeline only
        return self._store.update_channel(
            notification_id,
            channel,
            channel_status,
            with_status={"delivery_status": status, "delivery_updated_at": _iso_now()},
        )

    def payment(self, notification_id: str) -> dict[str, Any]:
        return (self._meta(notification_id) or {}).get("payment") or {}

    def mark_compensated(
        self,
        notification_id: str,
        channel: str,
        *,
        reason: str,
        refund_id: str,
        refund_status: str,
        payment_intent_id: str,
    ) -> None:
        """Record the refund as the saga's RefundPayment step does, and the notification's final status.

        One atomic write with the channel's ``failed``: the top of ``CHANNEL_STATUS_RANK``, so setting it
        unconditionally is forward-only too.
        """
        at = _iso_now()
        self._table.update_item(
            Key=_meta_key(notification_id),
            UpdateExpression=(
                "SET #p.refund_id = :refund, #p.refund_status = :refund_status, #p.#st = :refunded, "
                "#c.#ch.#st = :failed, #c.#ch.reason = :reason, #st = :compensated, "
                "status_reason = :status_reason, finished_at = :at, updated_at = :at "
                "REMOVE payment_task_token"
            ),
            ExpressionAttributeNames={"#p": "payment", "#c": "channels", "#ch": channel, "#st": "status"},
            ExpressionAttributeValues={
                ":refund": refund_id,
                ":refund_status": refund_status,
                ":refunded": "refunded",
                ":failed": "failed",
                ":reason": reason,
                ":compensated": "compensated",
                ":status_reason": f"required_{channel}_failed",
                ":at": at,
            },
        )
        details = {
            "refund_id": refund_id,
            "payment_intent_id": payment_intent_id,
            "reason": f"{channel}_{reason}",
        }
        try:
            self._table.put_item(
                Item={
                    "pk": f"NOTIFICATION#{notification_id}",
                    "sk": f"EVENT#{at}#refund-{refund_id}",
                    "step": "RefundPayment",
                    "outcome": "refunded",
                    "at": at,
                    "provider": "stripe",
                    "details": details,
                },
                ConditionExpression="attribute_not_exists(sk)",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def needs_compensation(self, notification_id: str, channel: str) -> bool:
        """A ``required`` channel of a notification whose payment was taken and not yet given back."""
        meta = self._meta(notification_id) or {}
        policy = ((meta.get("channels") or {}).get(channel) or {}).get("policy")
        payment_status = (meta.get("payment") or {}).get("status")
        due = (
            policy == "required"
            and payment_status in _CHARGED
            and meta.get("status") not in _NOTHING_TO_COMPENSATE
        )
        if due and meta.get("status") in _RUNNING:
            raise SagaStillRunning(notification_id)
        return due


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
