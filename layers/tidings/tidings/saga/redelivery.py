"""Later tries of a message the saga could not deliver: the SMS outage queue and redriven e-mails.

Each SQS message names a notification and a channel (contact details stay in the table). One try runs
the primary provider then its fallback. While tries remain, the message becomes visible again after a
growing delay (``base * 2**(try-1)``, capped); after the last try it goes to the channel's dead-letter
queue. A message holding a task token belongs to a saga that waits for it (a ``required`` SMS): the saga
is resumed on success, or failed after the last try so that it refunds the payment.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from tidings.errors import InvalidRequest, ProviderError, RecipientSuppressed
from tidings.notifications.models import ChannelStatus, NotificationStatus
from tidings.saga.callbacks import TaskTokenResumer
from tidings.saga.outcome import upgraded_status
from tidings.saga.results import SendResult
from tidings.saga.steps import FALLBACK, PRIMARY, SagaSteps

#: Statuses after which a late message must not go out (the payment was refunded or never taken).
#: Channel statuses after which the message is out: only a provider's report sets them on a parked one.
_ALREADY_OUT = {ChannelStatus.SENT, ChannelStatus.DELIVERED}
_NO_LONGER_WANTED = {
    NotificationStatus.COMPENSATED,
    NotificationStatus.FAILED,
    NotificationStatus.PAYMENT_DECLINED,
    NotificationStatus.CANCELLING,
    NotificationStatus.CANCELLED,
    NotificationStatus.REFUNDED,
}


#: What one try did with a message (the consumer counts each as a ``Redelivery<Outcome>`` metric).
RedeliveryOutcome = Literal["dropped", "rejected", "sent", "given_up", "dead_lettered", "suppressed"]


class ParkedMessage(BaseModel):
    """A message on the SMS outage queue, or a redriven e-mail or SMS: which notification, which channel.

    Other keys (a redriven dead-letter body's ``kind``, ``tries``, ``error``) are kept for the next
    dead-letter body."""

    model_config = ConfigDict(extra="allow")

    notification_id: str
    channel: Literal["email", "sms"]
    #: Set when a saga waits for this message (a ``required`` SMS).
    task_token: str | None = None
    #: The API call's request id (every parked body carries it): on the try's log lines.
    request_id: str | None = None


class RetryLater(Exception):
    """This try failed; the message stays on the queue and comes back after its visibility delay."""


@dataclass
class RedeliveryPolicy:
    max_tries: int
    base_delay_seconds: int
    max_delay_seconds: int

    def delay_after(self, tries: int) -> int:
        return int(min(self.base_delay_seconds * 2 ** max(tries - 1, 0), self.max_delay_seconds))


@dataclass
class Redelivery:
    steps: SagaSteps
    policy: RedeliveryPolicy
    saga: TaskTokenResumer
    sqs: Callable[[], Any]
    dead_letter_queue_urls: dict[str, str]

    def handle(
        self, message: ParkedMessage, tries: int, delay_next_try: Callable[[int], None]
    ) -> RedeliveryOutcome:
        """One try of ``message`` (its ``tries``-th receive). Returns what happened; raises RetryLater."""
        outcome = self._try(message, tries, delay_next_try)
        if message.task_token is not None:
            # Done with (resumed, failed or dropped): the token is no longer the shop's to cancel.
            self.steps.store.clear_sms_task_token(message.notification_id, message.task_token)
        return outcome

    def _try(
        self, message: ParkedMessage, tries: int, delay_next_try: Callable[[int], None]
    ) -> RedeliveryOutcome:
        notification_id, channel, token = message.notification_id, message.channel, message.task_token
        store = self.steps.store
        notification = store.get(notification_id)
        if notification.status in _NO_LONGER_WANTED:
            return self._drop(notification_id, channel, reason=notification.status.value)
        if token is not None and notification.sms_task_token != token:
            # Where the shop's cancel finds the waiting saga (POST /notifications/{id}/cancel).
            store.store_sms_task_token(notification_id, token)
        current = notification.channels.get(channel)
        if token is None and current is not None and current.status in _ALREADY_OUT:
            # The provider reported this message (its webhook moved the channel on) although the send
            # that made it never recorded a result: its container died after the provider accepted.
            # Another try would send it twice (docs/reliability.md, the window).
            outcome = self._drop(notification_id, channel, reason=f"already_{current.status.value}")
            self._upgrade_finished(notification_id)
            return outcome

        last_error: ProviderError | None = None
        for provider in (PRIMARY[channel], FALLBACK[channel]):
            try:
                result = self.steps.send(
                    notification_id, channel, provider, attempt=tries - 1, step="RetryDelivery"
                )
            except InvalidRequest as error:
                if token:
                    self._fail_saga(token, error)
                return "rejected"
            except RecipientSuppressed as error:
                # A required channel's recipient opted out meanwhile: the waiting saga refunds.
                if token:
                    self.saga.fail(token, type(error).__name__, error.to_dict())
                return "suppressed"
            except ProviderError as error:
                last_error = error
                continue
            if result.skipped:  # suppressed meanwhile (best-effort): nothing sent, nothing more to try
                if token:
                    self._resume_saga(token, result)
                return "suppressed"
            store.update_channel(notification_id, channel, fallback=True)
            if token:
                self._resume_saga(token, result)
            else:
                self._upgrade_finished(notification_id)
            return "sent"

        if tries < self.policy.max_tries:
            delay = self.policy.delay_after(tries)
            delay_next_try(delay)
            self.steps.record_event(
                notification_id,
                "RetryDelivery",
                "retry_scheduled",
                None,
                tries - 1,
                {"channel": channel, "next_try_in_seconds": delay, "error_type": type(last_error).__name__},
            )
            raise RetryLater(f"{channel} still undeliverable after try {tries}")

        if token:
            # The waiting saga compensates; the message must not be redriven after a refund.
            self._fail_saga(token, last_error)
            return "given_up"
        body = message.model_dump(exclude_none=True, exclude={"task_token"})
        body |= {"kind": channel, "tries": tries, "error": last_error.to_dict() if last_error else None}
        self.sqs().send_message(QueueUrl=self.dead_letter_queue_urls[channel], MessageBody=json.dumps(body))
        store.update_channel(
            notification_id, channel, ChannelStatus.DEAD_LETTERED, with_status={"reason": "tries_spent"}
        )
        self.steps.record_event(
            notification_id,
            "RetryDelivery",
            "dead_lettered",
            None,
            tries - 1,
            {"channel": channel, "tries": tries},
        )
        return "dead_lettered"

    def _drop(self, notification_id: str, channel: str, *, reason: str) -> RedeliveryOutcome:
        """Acknowledge the message without sending it, and say why in the timeline."""
        details = {"channel": channel, "reason": reason}
        self.steps.record_event(notification_id, "RetryDelivery", "dropped", None, None, details)
        return "dropped"

    def _resume_saga(self, token: str, result: SendResult) -> None:
        self.saga.resume(token, result.model_dump(mode="json"))

    def _fail_saga(self, token: str, error: ProviderError | None) -> None:
        name = type(error).__name__ if error else "ProviderUnavailable"
        self.saga.fail(token, name, error.to_dict() if error else {})

    def _upgrade_finished(self, notification_id: str) -> None:
        notification = self.steps.store.get(notification_id)
        channels = {name: channel.status for name, channel in notification.channels.items()}
        better = upgraded_status(notification.status, channels)
        if better:
            self.steps.store.set_status(notification_id, better, reason="sent_from_outage_queue")
