"""The processing side: what a verified webhook event changes.

* Stripe ``payment_intent.succeeded`` / ``payment_failed`` resume the saga waiting on 3-D Secure
  (``SendTaskSuccess`` / ``SendTaskFailure`` with the task token it stored when it paused).
* SendGrid and Twilio delivery events go into the notification's timeline and move the channel's status
  forward only, through the notification store's one forward-only write (``CHANNEL_STATUS_FOR_DELIVERY``):
  ``bounced``, ``undelivered`` and ``failed`` are terminal; a late ``sent`` never overwrites ``delivered``.
* A terminal delivery failure on a ``required`` channel with no fallback left asks for compensation.

Every effect is idempotent on its own (timeline entries keyed by the event identity, conditional status
updates, a spent task token is not an error), so a redelivered message cannot apply anything twice even
when the dedupe record was released after a failure half-way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

from pydantic import BaseModel

from tidings.notifications.models import ChannelStatus
from tidings.webhooks.models import WebhookEvent

TERMINAL_FAILURES = frozenset({"bounced", "undelivered", "failed"})
#: The channel status (the saga's vocabulary) each delivery report stands for. ``queued`` is left out:
#: it says no more than the send step's own ``sent``. The store applies it forward only
#: (``tidings.notifications.models.CHANNEL_STATUS_RANK``), so a late ``sent`` never overwrites
#: ``delivered`` and nothing overwrites a bounce.
CHANNEL_STATUS_FOR_DELIVERY: Mapping[str, ChannelStatus] = {
    "sent": ChannelStatus.SENT,
    "delivered": ChannelStatus.DELIVERED,
    **dict.fromkeys(TERMINAL_FAILURES, ChannelStatus.REJECTED),
}


class SagaStillRunning(Exception):
    """Compensation is due but the saga has not ended: its final status would overwrite ours.

    Raised after the timeline and status are recorded, so the message is retried later (the queue's
    visibility timeout) and compensates once the saga has finished; after the last try it waits in the
    DLQ for a redrive.
    """


class NotificationLedger(Protocol):
    """The notification store as the processor needs it (implemented on DynamoDB in ``ledger``)."""

    def exists(self, notification_id: str) -> bool: ...

    def notification_for_payment_intent(self, payment_intent_id: str) -> str | None: ...

    def payment_task_token(self, notification_id: str) -> str | None: ...

    def clear_task_token(self, notification_id: str, task_token: str) -> None: ...

    def record_webhook(self, notification_id: str, event: WebhookEvent) -> bool:
        """Append the event to the timeline once; False if this event is already there."""
        ...

    def advance_channel_status(self, notification_id: str, channel: str, status: str) -> bool:
        """Move the channel forward to what the report ``status`` stands for; False if it is kept."""
        ...

    def advance_payment_status(self, notification_id: str, status: str) -> bool:
        """Move ``payment.status`` forward to a Stripe event's outcome; False if it is kept."""
        ...

    def needs_compensation(self, notification_id: str, channel: str) -> bool:
        """True when the channel is ``required`` and no fallback is left to try; raises
        ``SagaStillRunning`` when that is so but the saga has not finished yet."""
        ...


class SagaResumer(Protocol):
    def resume(self, task_token: str, output: Mapping[str, object]) -> bool:
        """SendTaskSuccess; False if the token is already spent (resumed, timed out or closed)."""
        ...

    def fail(self, task_token: str, error: str, cause: Mapping[str, object]) -> bool:
        """SendTaskFailure; False if the token is already spent."""
        ...


class Compensator(Protocol):
    def request_compensation(self, notification_id: str, channel: str, reason: str) -> None: ...


Action = Literal[
    "saga_resumed",
    "saga_failed",
    "saga_not_waiting",
    "status_advanced",
    "status_kept",
    "compensation_requested",
    "recorded",
    "uncorrelated",
]


class ProcessingOutcome(BaseModel):
    """What one event did; saved as the idempotency record's result."""

    event_id: str
    provider: str
    actions: list[Action]


def apply_webhook_event(
    event: WebhookEvent,
    ledger: NotificationLedger,
    saga: SagaResumer,
    compensator: Compensator,
) -> ProcessingOutcome:
    """Apply one event's effects. Raises on an infrastructure failure so the message is retried."""
    actions: list[Action] = []
    notification_id = event.notification_id
    if not notification_id and event.channel == "payment" and event.provider_object_id:
        notification_id = ledger.notification_for_payment_intent(event.provider_object_id)
    if not notification_id or not ledger.exists(notification_id):
        # Not one of ours (or no longer kept): acknowledged, nothing written, so no orphan timeline.
        return ProcessingOutcome(event_id=event.event_id, provider=event.provider, actions=["uncorrelated"])

    if ledger.record_webhook(notification_id, event):
        actions.append("recorded")

    if event.channel == "payment":
        if event.status is not None:
            advanced = ledger.advance_payment_status(notification_id, event.status)
            actions.append("status_advanced" if advanced else "status_kept")
        actions.append(_resume_saga(event, notification_id, ledger, saga))
    elif event.status is not None:
        advanced = ledger.advance_channel_status(notification_id, event.channel, event.status)
        actions.append("status_advanced" if advanced else "status_kept")
        # Asked again on a redelivery even if the status already moved: the first attempt may have
        # failed after the update. Compensation is idempotent per notification, so asking twice is safe.
        if event.status in TERMINAL_FAILURES and ledger.needs_compensation(notification_id, event.channel):
            compensator.request_compensation(notification_id, event.channel, reason=event.status)
            actions.append("compensation_requested")
    return ProcessingOutcome(event_id=event.event_id, provider=event.provider, actions=actions)


def _resume_saga(
    event: WebhookEvent, notification_id: str, ledger: NotificationLedger, saga: SagaResumer
) -> Action:
    token = ledger.payment_task_token(notification_id)
    if not token:
        return "saga_not_waiting"
    if event.status == "succeeded":
        output = {
            "payment_intent_id": event.provider_object_id,
            "status": "succeeded",
            "webhook_event_id": event.event_id,
        }
        action: Action = "saga_resumed" if saga.resume(token, output) else "saga_not_waiting"
    else:
        cause = {
            "payment_intent_id": event.provider_object_id,
            "webhook_event_id": event.event_id,
            **event.detail,
        }
        # The class name is the saga's Catch contract: a failed 3-D Secure is a declined payment.
        action = "saga_failed" if saga.fail(token, "PaymentDeclined", cause) else "saga_not_waiting"
    # Used or spent either way: a second event for this payment must not try it again.
    ledger.clear_task_token(notification_id, token)
    return action
