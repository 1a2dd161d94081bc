"""What each saga step returns: the state machine keeps it at the step's ``ResultPath``.

The Lambda handlers dump these with ``model_dump(mode="json")``, so the execution's state holds exactly
these fields (``saga/outcome.py`` and the definition's Choice states read some of them). Small on
purpose: contact details and message content never travel through Step Functions.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from tidings.notifications.models import NotificationStatus


class StepResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChargeResult(StepResult):
    """ChargePayment: Stripe's PaymentIntent status (``succeeded``, ``requires_action``...)."""

    status: str
    payment_intent_id: str


class PaymentActionAwaited(StepResult):
    """WaitForPaymentAction's task: the token is stored, the Stripe webhook resumes the saga."""

    waiting: bool = True


class ChargeReconciliationAwaited(StepResult):
    """AwaitChargeReconciliation's task: the token is stored, ReconcilePayment resumes the saga."""

    waiting: bool = True


#: What the saga does once ReconcilePayment has asked Stripe about an uncertain charge:
#: ``continue`` (the charge exists: send the receipt and the SMS), ``charge_again`` (Stripe has no
#: record and the policy says charge: ChargePayment again, with the same idempotency key) or ``finished``
#: (ReconcilePayment recorded the final status itself: not taken, void and refunded, declined).
ReconcileDecision = Literal["continue", "charge_again", "finished"]


class ChargeReconciled(StepResult):
    """The output AwaitChargeReconciliation is resumed with (``$.ChargeReconciliationResult``); a
    ``finished`` one is also the execution's output, as RecordOutcome's is for NotificationFinished."""

    notification_id: str
    decision: ReconcileDecision
    status: NotificationStatus | None = None
    reason: str
    payment_intent_id: str | None = None


class CancelResult(StepResult):
    """CancelPayment: cancelled, or the customer finished 3-D Secure at the last moment."""

    outcome: Literal["cancelled", "already_succeeded"]
    payment_intent_id: str


class RefundResult(StepResult):
    """RefundPayment: Stripe's refund and its status."""

    refund_id: str
    status: str
    #: What this refund gave back (minor units); the state machine keeps only the two fields above.
    amount: int | None = None


class SendResult(StepResult):
    """SendReceiptEmail(ViaSes) / SendSms(ViaSns): the provider that accepted the message, or why the
    channel was skipped without calling one (``skipped``: ``not_requested`` or ``suppressed``)."""

    provider: str | None
    provider_message_id: str | None
    deduplicated: bool = False
    attempts: int = 0
    skipped: str | None = None

    @classmethod
    def skip(cls, reason: str) -> SendResult:
        return cls(provider=None, provider_message_id=None, skipped=reason)


class OutcomeResult(StepResult):
    """RecordOutcome: the notification's one final status."""

    notification_id: str
    status: NotificationStatus
    reason: str | None
