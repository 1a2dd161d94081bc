"""Settling a payment case from the compensation dead-letter queue, once its cause is fixed.

A case names a notification and what could not be done (``kind``): ``refund`` (the saga's refund kept
failing), ``cancel`` (a 3-D Secure payment could not be cancelled) or ``charge`` (the charge's outcome
was unknown). ``tidings dlq redrive compensation`` puts cases back on the compensation retry queue; the
ReconcilePayment function settles each one with the same idempotency keys the saga used, so a case
redriven twice never refunds or cancels twice. A case that still fails goes back to the dead-letter
queue (the retry queue's redrive policy), and the alarm stays on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tidings.notifications.models import Notification, NotificationStatus
from tidings.saga.steps import SagaSteps, payment_intent_of

_UNFINISHED = {"requires_action", "requires_payment_method", "requires_confirmation", "processing"}
#: How far Stripe's clock may be behind ours when we look for a charge created after the saga started.
CLOCK_MARGIN = timedelta(minutes=5)


@dataclass
class Reconciler:
    steps: SagaSteps

    def handle(self, case: dict[str, Any]) -> str:
        notification_id, kind = case["notification_id"], case["kind"]
        store = self.steps.store
        notification = store.get(notification_id)
        refunded = notification.payment.refund_id is not None
        if kind == "refund":
            return self._refund(notification_id, "refunded_after_redrive", refunded=refunded)
        if kind == "cancel":
            outcome = self.steps.cancel_payment(notification_id, payment_intent_of(notification))
            if outcome.outcome == "already_succeeded":
                # Paid after the saga gave up on it: nobody was told, so give the money back.
                return self._refund(notification_id, "paid_after_timeout_refunded", refunded=refunded)
            return self._finish(
                notification_id, NotificationStatus.PAYMENT_DECLINED, "payment_action_timeout"
            )
        if kind == "charge":
            return self._charge(notification)
        raise ValueError(f"unknown compensation case kind: {kind}")

    def _charge(self, notification: Notification) -> str:
        """Learn what became of an uncertain charge by asking Stripe, never by charging again.

        With no PaymentIntent id recorded, the intent is looked up by the ``metadata.notification_id``
        the charge carried; if Stripe has none, the customer was not charged and nothing more happens
        (``payment_not_taken``). A successful charge is refunded (the saga is over).
        """
        notification_id = notification.notification_id
        gateway = self.steps.payment_gateway()
        payment_intent_id = notification.payment.payment_intent_id
        if payment_intent_id:
            status = gateway.retrieve(payment_intent_id).status
        else:
            found = gateway.find_by_metadata(
                "notification_id", notification_id, created_from=self._charge_window_start(notification)
            )
            if found is None:
                return self._finish(
                    notification_id, NotificationStatus.PAYMENT_NOT_TAKEN, "charge_reconciled_not_found"
                )
            status, payment_intent_id = found.status, found.payment_intent_id
            self.steps.store.link_payment_intent(notification_id, payment_intent_id)
            self.steps.store.record_payment_intent(notification_id, payment_intent_id)
        if status == "succeeded":
            return self._refund(notification_id, "charge_reconciled_refunded", refunded=False)
        if status in _UNFINISHED:
            self.steps.cancel_payment(notification_id, payment_intent_id)
        return self._finish(
            notification_id, NotificationStatus.PAYMENT_DECLINED, f"charge_reconciled_{status}"
        )

    @staticmethod
    def _charge_window_start(notification: Notification) -> int:
        """The earliest a charge for this notification can have been created, as a Unix time (with a
        margin for the difference between our clock and Stripe's)."""
        first_possible_use = notification.started_at or notification.created_at
        started = datetime.fromisoformat(first_possible_use.replace("Z", "+00:00"))
        return int((started - CLOCK_MARGIN).timestamp())

    def _refund(self, notification_id: str, reason: str, *, refunded: bool) -> str:
        if not refunded:
            self.steps.refund_payment(notification_id, reason=reason)
        return self._finish(notification_id, NotificationStatus.COMPENSATED, reason)

    def _finish(self, notification_id: str, status: NotificationStatus, reason: str) -> str:
        self.steps.store.finish(notification_id, status, reason)
        self.steps.record_event(
            notification_id, "ReconcilePayment", status, "stripe", None, {"reason": reason}
        )
        return reason
