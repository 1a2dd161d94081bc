"""Compensation for a delivery that failed for good after the saga moved on.

A hard bounce or an undelivered SMS arrives minutes after the provider accepted the message, usually
after the saga ended. For a ``required`` channel the saga's rule applies all the same: refund the payment
with the saga's own refund idempotency key (``tidings.saga.keys.refund_key``), so a payment is never
refunded twice whoever asks first; record the refund like the saga's RefundPayment step; end the channel
``failed`` and the notification ``compensated``. A refund that fails raises, so the webhook message is
retried and finally lands in the processor's dead-letter queue (with its alarm): never dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tidings.notifications.models import Compensation
from tidings.saga.keys import refund_key
from tidings.webhooks.ledger import DynamoNotificationLedger


class RefundCompensator:
    """Implements ``processor.Compensator`` with the provider layer's payment gateway."""

    def __init__(self, ledger: DynamoNotificationLedger, payment_gateway: Callable[[], Any]) -> None:
        self._ledger = ledger
        self._payment_gateway = payment_gateway  # a factory: the Stripe client is built only when needed

    def request_compensation(self, notification_id: str, channel: str, reason: str) -> None:
        payment = self._ledger.payment(notification_id)
        payment_intent_id = payment.payment_intent_id if payment else None
        if not payment_intent_id:
            return  # nothing was charged: nothing to give back
        refund = self._payment_gateway().refund(
            payment_intent_id, idempotency_key=refund_key(notification_id)
        )
        self._ledger.mark_compensated(
            notification_id,
            Compensation(
                channel=channel,
                reason=reason,
                refund_id=refund.refund_id,
                refund_status=refund.status,
                payment_intent_id=payment_intent_id,
            ),
        )
