"""Compensation for a delivery that failed for good after the saga moved on.

A hard bounce or an undelivered SMS arrives minutes after the provider accepted the message, usually
after the saga ended. For a ``required`` channel the saga's rule applies all the same: refund the
payment (idempotent: the same key as the saga's own refund, so a payment is never refunded twice), record
the refund and end as ``compensated``. A refund that fails raises, so the webhook message is retried and
finally lands in the processor's dead-letter queue (with its alarm): never dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tidings.webhooks.ledger import DynamoNotificationLedger


def refund_idempotency_key(notification_id: str) -> str:
    """Must equal the key the saga's RefundPayment step uses for the same notification."""
    return f"{notification_id}:refund"


class RefundCompensator:
    """Implements ``processor.Compensator`` with the provider layer's payment gateway."""

    def __init__(self, ledger: DynamoNotificationLedger, payment_gateway: Callable[[], Any]) -> None:
        self._ledger = ledger
        self._payment_gateway = payment_gateway  # a factory: the Stripe client is built only when needed

    def request_compensation(self, notification_id: str, channel: str, reason: str) -> None:
        payment_intent_id = self._ledger.payment_intent_id(notification_id)
        if not payment_intent_id:
            return  # nothing was charged: nothing to give back
        refund = self._payment_gateway().refund(
            payment_intent_id, idempotency_key=refund_idempotency_key(notification_id)
        )
        self._ledger.mark_compensated(notification_id, channel, refund_id=refund.refund_id)
