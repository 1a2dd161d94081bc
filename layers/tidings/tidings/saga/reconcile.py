"""Settling a payment case from the compensation dead-letter queue, once its cause is fixed.

A case names a notification and what could not be done (``kind``): ``refund`` (the saga's refund kept
failing), ``cancel`` (a 3-D Secure payment could not be cancelled) or ``charge`` (the charge's outcome
was unknown). ``tidings dlq redrive compensation`` puts cases back on the compensation retry queue; the
ReconcilePayment function settles each one with the same idempotency keys the saga used, so a case
redriven twice never refunds or cancels twice. A case that still fails goes back to the dead-letter
queue (the retry queue's redrive policy), and the alarm stays on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tidings.errors import IdempotencyConflict, PaymentDeclined
from tidings.notifications.models import NotificationStatus
from tidings.saga.steps import SagaSteps

_UNFINISHED = {"requires_action", "requires_payment_method", "requires_confirmation", "processing"}
#: Stripe keeps an idempotency key for 24 hours; past this age a replayed charge could be a new charge.
CHARGE_REPLAY_WINDOW = timedelta(hours=23)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Reconciler:
    steps: SagaSteps
    now: Callable[[], datetime] = field(default=_utc_now)

    def handle(self, case: dict[str, Any]) -> str:
        notification_id, kind = case["notification_id"], case["kind"]
        store = self.steps.store
        notification = store.get(notification_id)
        payment = notification["payment"]
        if kind == "refund":
            return self._refund(notification_id, payment, "refunded_after_redrive")
        if kind == "cancel":
            outcome = self.steps.cancel_payment(notification_id, payment["payment_intent_id"])
            if outcome["outcome"] == "already_succeeded":
                # Paid after the saga gave up on it: nobody was told, so give the money back.
                return self._refund(notification_id, payment, "paid_after_timeout_refunded")
            return self._finish(
                notification_id, NotificationStatus.PAYMENT_DECLINED, "payment_action_timeout"
            )
        if kind == "charge":
            return self._charge(notification_id, payment, notification)
        raise ValueError(f"unknown compensation case kind: {kind}")

    def _charge(self, notification_id: str, payment: dict[str, Any], notification: dict[str, Any]) -> str:
        """Learn what became of an uncertain charge; a successful one is refunded (the saga is over)."""
        payment_intent_id = payment.get("payment_intent_id")
        try:
            if payment_intent_id:
                status = self.steps.payment_gateway().retrieve(payment_intent_id).status
            else:
                self._check_key_still_kept(notification)
                # Same Idempotency-Key as the saga: Stripe answers with the original PaymentIntent.
                charged = self.steps.charge_payment(notification_id)
                status, payment_intent_id = charged["status"], charged["payment_intent_id"]
        except PaymentDeclined:
            return self._finish(notification_id, NotificationStatus.PAYMENT_DECLINED, "card_declined")
        if status == "succeeded":
            return self._refund(
                notification_id, {"payment_intent_id": payment_intent_id}, "charge_reconciled_refunded"
            )
        if status in _UNFINISHED:
            self.steps.cancel_payment(notification_id, payment_intent_id)
        return self._finish(
            notification_id, NotificationStatus.PAYMENT_DECLINED, f"charge_reconciled_{status}"
        )

    def _check_key_still_kept(self, notification: dict[str, Any]) -> None:
        """Refuse to replay a charge whose idempotency key Stripe may have forgotten: it could charge again.

        The case stays in the compensation queues (and its alarm on) for a person to find the payment in
        Stripe by ``metadata.notification_id``.
        """
        first_possible_use = notification.get("started_at") or notification["created_at"]
        started = datetime.fromisoformat(first_possible_use.replace("Z", "+00:00"))
        if self.now() - started > CHARGE_REPLAY_WINDOW:
            raise IdempotencyConflict(
                "the charge's idempotency key may have expired: find the PaymentIntent in Stripe",
                provider="stripe",
                code="idempotency_key_expired",
            )

    def _refund(self, notification_id: str, payment: dict[str, Any], reason: str) -> str:
        if not payment.get("refund_id"):
            self.steps.refund_payment(notification_id, reason=reason)
        return self._finish(notification_id, NotificationStatus.COMPENSATED, reason)

    def _finish(self, notification_id: str, status: NotificationStatus, reason: str) -> str:
        self.steps.store.finish(notification_id, status, reason)
        self.steps.record_event(
            notification_id, "ReconcilePayment", status, "stripe", None, {"reason": reason}
        )
        return reason
