"""The processor's view of the notification table: webhook vocabulary over ``NotificationStore``.

The store owns the table (its keys, its clock, every write); this adapter only says what a verified
webhook event means for a notification:

* its timeline entry, keyed by the event's identity so a redelivery cannot add it twice;
* a delivery report moves ``channels.<channel>.status`` through ``NotificationStore.update_channel``, the
  one forward-only status write the saga's steps use too (``delivered`` on confirmation, ``rejected`` on
  a bounce or undelivered message), and keeps the provider's own word in ``delivery_status`` beside it,
  written only when the status moves, so out-of-order or concurrent events never move either backwards;
* whether a failed ``required`` channel still needs its payment given back, and recording that it was.
"""

from __future__ import annotations

import hashlib

from tidings.notifications.models import (
    Compensation,
    Notification,
    NotificationStatus,
    PaymentRecord,
    TimelineEvent,
)
from tidings.notifications.store import NotificationNotFound, NotificationStore, iso_from_epoch
from tidings.webhooks.models import WebhookEvent
from tidings.webhooks.processor import CHANNEL_STATUS_FOR_DELIVERY, SagaStillRunning

#: Payment statuses meaning money was taken (a refunded payment is compensated already).
_CHARGED = frozenset({"succeeded", "partially_refunded", "refunded"})
#: Statuses of a saga that has not ended yet (it would overwrite a final status set now).
_RUNNING = frozenset(
    {
        NotificationStatus.ACCEPTED,
        NotificationStatus.RUNNING,
        NotificationStatus.AWAITING_PAYMENT_ACTION,
        NotificationStatus.CANCELLING,
    }
)
#: Notification statuses after which nothing is compensated again.
_NOTHING_TO_COMPENSATE = frozenset(
    {
        NotificationStatus.COMPENSATED,
        NotificationStatus.PAYMENT_DECLINED,
        NotificationStatus.FAILED,
        # Given back already: by the shop's cancel, or the shop's refund of the whole payment (a
        # partial refund still compensates the rest).
        NotificationStatus.CANCELLED,
        NotificationStatus.REFUNDED,
    }
)


class DynamoNotificationLedger:
    """Implements ``processor.NotificationLedger`` with the ``NotificationStore``."""

    def __init__(self, store: NotificationStore) -> None:
        self.store = store

    def exists(self, notification_id: str) -> bool:
        return self.store.exists(notification_id)

    def notification_for_payment_intent(self, payment_intent_id: str) -> str | None:
        return self.store.notification_for_payment_intent(payment_intent_id)

    def payment_task_token(self, notification_id: str) -> str | None:
        notification = self._find(notification_id)
        return notification.payment_task_token if notification else None

    def clear_task_token(self, notification_id: str, task_token: str) -> None:
        """Forget the token once used, only if it is still the one we used (a new wait keeps its own)."""
        self.store.clear_task_token(notification_id, task_token)

    def record_webhook(self, notification_id: str, event: WebhookEvent) -> bool:
        digest = hashlib.sha256(event.dedupe_key.encode()).hexdigest()[:16]
        details: dict[str, str] = {"event_id": event.event_id, "kind": event.kind, **event.detail}
        if event.provider_object_id:
            details["provider_object_id"] = event.provider_object_id
        if event.status:
            details["status"] = event.status
        entry = TimelineEvent(
            step=f"Webhook{event.provider.capitalize()}",
            outcome=event.kind,
            at=iso_from_epoch(event.received_at),
            provider=event.provider,
            details=details,
        )
        return self.store.add_event(notification_id, entry, once_as=f"webhook-{digest}")

    def advance_channel_status(self, notification_id: str, channel: str, status: str) -> bool:
        channel_status = CHANNEL_STATUS_FOR_DELIVERY.get(status)
        if channel_status is None:
            return False  # in the timeline only
        return self.store.update_channel(
            notification_id,
            channel,
            channel_status,
            with_status={"delivery_status": status, "delivery_updated_at": self.store.now()},
        )

    def advance_payment_status(self, notification_id: str, status: str) -> bool:
        return self.store.set_payment_status(notification_id, status)

    def payment(self, notification_id: str) -> PaymentRecord | None:
        notification = self._find(notification_id)
        return notification.payment if notification else None

    def mark_compensated(self, notification_id: str, compensation: Compensation) -> None:
        """Record the refund as the saga's RefundPayment step does, and the notification's final status."""
        self.store.compensate(notification_id, compensation)

    def needs_compensation(self, notification_id: str, channel: str) -> bool:
        """A ``required`` channel of a notification whose payment was taken and not yet given back."""
        notification = self._find(notification_id)
        if notification is None:
            return False
        record = notification.channels.get(channel)
        due = (
            record is not None
            and record.policy == "required"
            and notification.payment.status in _CHARGED
            and notification.status not in _NOTHING_TO_COMPENSATE
        )
        if due and notification.status in _RUNNING:
            raise SagaStillRunning(notification_id)
        return due

    def _find(self, notification_id: str) -> Notification | None:
        try:
            return self.store.get(notification_id)
        except NotificationNotFound:
            return None
