"""What a shop may do to a notification it sent: refund its payment, or cancel it while its saga waits.

``POST /notifications/{id}/refund`` gives back all or part of a payment once the saga has ended; the
amount left to refund is what Stripe says (the PaymentIntent and its charge), never what the table
remembers, and the refund goes through the saga's own RefundPayment step (``SagaSteps.refund_payment``)
under an idempotency key made from the shop's ``Idempotency-Key``, so a repeated request never refunds
twice at Stripe. ``POST /notifications/{id}/cancel`` ends a saga that waits: for 3-D Secure
(WaitForPaymentAction) and for a required SMS on the outage queue, the waiting task is failed with
``NotificationCancelled`` (``tidings.saga.callbacks``, the one task-token resumer) and the saga cancels
or refunds the payment itself; for an uncertain charge (AwaitChargeReconciliation) ReconcilePayment's
own code asks Stripe and settles it here, then lets the saga finish. Anything else is refused with a
typed error that ``tidings.api.http`` answers with 409 or 422 and a machine-readable body.

No API Gateway event or HTTP response here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from tidings.errors import NotificationCancelled
from tidings.notifications.currencies import STRIPE_MAXIMUM_AMOUNT
from tidings.notifications.models import Notification, NotificationStatus, TimelineEvent
from tidings.notifications.store import NotificationNotFound, NotificationStore
from tidings.saga.keys import refund_key

if TYPE_CHECKING:
    from tidings.saga.callbacks import TaskTokenResumer
    from tidings.saga.reconcile import Reconciler
    from tidings.saga.steps import SagaSteps

#: Statuses of a saga still on its way (nothing may be refunded yet: cancel it, or wait for its end).
IN_FLIGHT = frozenset(
    {
        NotificationStatus.ACCEPTED,
        NotificationStatus.RUNNING,
        NotificationStatus.AWAITING_PAYMENT_ACTION,
        NotificationStatus.CANCELLING,
    }
)

#: Which wait a cancel ended.
Waited = Literal["payment_action", "charge_reconciliation", "sms_outage_queue"]


# --- requests and answers ------------------------------------------------------------------------------
class RefundRequest(BaseModel):
    """``POST /notifications/{id}/refund``: all of what remains (no ``amount``), or part of it."""

    model_config = ConfigDict(extra="forbid")

    amount: StrictInt | None = Field(
        default=None,
        gt=0,
        le=STRIPE_MAXIMUM_AMOUNT,
        description="In the payment's minor unit; omit it to refund all that remains",
    )


class RefundView(BaseModel):
    refund_id: str
    amount: int = Field(description="What this refund gave back, in the payment's minor unit")
    status: str = Field(description="Stripe's refund status (succeeded, pending, ...)")


class RefundedPayment(BaseModel):
    amount: int
    currency: str
    amount_refunded: int = Field(description="Refunded so far, this refund included (Stripe's count)")
    remaining: int = Field(description="What may still be refunded")


class RefundAnswer(BaseModel):
    """The notification's new status (``refunded`` or ``partially_refunded``) and the refund."""

    notification_id: str
    status: NotificationStatus
    status_url: str
    refund: RefundView
    payment: RefundedPayment


class CancelAnswer(BaseModel):
    """The notification's new status: ``cancelling`` while the saga cancels or refunds the payment, or
    ``cancelled`` (already settled, or a repeat once it is)."""

    notification_id: str
    status: NotificationStatus
    status_url: str
    waited_for: Waited | None = Field(None, description="The wait the cancel ended (None on a repeat)")


# --- refusals ------------------------------------------------------------------------------------------
class ActionRefused(Exception):
    """A refund or cancel that cannot be done in the notification's state (409 unless said otherwise)."""

    http_status = 409
    code = "refused"

    def __init__(self, message: str, notification: Notification, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.notification_id = notification.notification_id
        self.status = notification.status.value
        self.details = details


class NotCharged(ActionRefused):
    """Nothing was ever taken: Stripe has no successful charge for this notification."""

    code = "not_charged"


class AlreadyRefunded(ActionRefused):
    code = "already_refunded"


class SagaInProgress(ActionRefused):
    """The saga has not ended: it may still charge or refund by itself."""

    code = "saga_in_progress"


class RefundExceedsRemaining(ActionRefused):
    """A partial refund above what is left to refund."""

    http_status = 422
    code = "refund_exceeds_remaining"


class NotCancellable(ActionRefused):
    """The saga is not waiting: it finished (``already_finished``) or is busy (``not_waiting``)."""

    def __init__(self, message: str, notification: Notification, code: str) -> None:
        super().__init__(message, notification)
        self.code = code


# --- the actions ---------------------------------------------------------------------------------------
@dataclass
class ShopActions:
    """Refund and cancel, over the notification table, the saga's steps (their payment gateway) and the
    task-token resumer; the reconciler is built only when an uncertain charge is cancelled."""

    store: NotificationStore
    steps: SagaSteps
    saga: TaskTokenResumer
    reconciler: Callable[[], Reconciler]

    # --- refund ---------------------------------------------------------------------------------
    def refund(
        self, client_id: str, notification_id: str, request: RefundRequest, idempotency_key: str
    ) -> RefundAnswer:
        """Refund ``request.amount`` (None: all that remains) of a notification whose saga ended."""
        notification = self._owned(client_id, notification_id)
        if notification.status in IN_FLIGHT:
            raise SagaInProgress(
                "the notification's saga has not ended; cancel it or wait for its end", notification
            )
        payment_intent_id = notification.payment.payment_intent_id
        if payment_intent_id is None:
            raise NotCharged("nothing was charged for this notification", notification)
        gateway = self.steps.payment_gateway()
        charge = gateway.refundable(payment_intent_id)  # ask Stripe what was taken and given back
        if charge.status != "succeeded":
            raise NotCharged("nothing was charged for this notification", notification)
        if charge.remaining == 0:
            raise AlreadyRefunded(
                "the payment is refunded in full already",
                notification,
                amount_refunded=charge.amount_refunded,
            )
        if request.amount is not None and request.amount > charge.remaining:
            raise RefundExceedsRemaining(
                "the amount is more than what remains to refund",
                notification,
                remaining=charge.remaining,
                amount_refunded=charge.amount_refunded,
            )
        refund = self.steps.refund_payment(
            notification_id,
            reason="requested_by_shop",
            amount=request.amount,
            idempotency_key=shop_refund_key(notification_id, idempotency_key),
        )
        after = gateway.refundable(payment_intent_id)  # Stripe's total (a replayed refund counts once)
        status = (
            NotificationStatus.REFUNDED if after.remaining == 0 else NotificationStatus.PARTIALLY_REFUNDED
        )
        self.store.record_shop_refund(
            notification_id,
            refund_id=refund.refund_id,
            refund_status=refund.status,
            amount_refunded=after.amount_refunded,
            status=status,
        )
        return RefundAnswer(
            notification_id=notification_id,
            status=status,
            status_url=_status_url(notification_id),
            refund=RefundView(
                refund_id=refund.refund_id,
                amount=refund.amount if refund.amount is not None else charge.remaining,
                status=refund.status,
            ),
            payment=RefundedPayment(
                amount=after.amount,
                currency=after.currency,
                amount_refunded=after.amount_refunded,
                remaining=after.remaining,
            ),
        )

    # --- cancel ---------------------------------------------------------------------------------
    def cancel(self, client_id: str, notification_id: str) -> CancelAnswer:
        """Cancel a notification whose saga waits (3-D Secure, an uncertain charge, a required SMS on
        the outage queue); a repeat answers the status the first one led to."""
        notification = self._owned(client_id, notification_id)
        if notification.cancel_requested_at and notification.status in (
            NotificationStatus.CANCELLING,
            NotificationStatus.CANCELLED,
        ):
            return self._cancel_answer(notification_id, notification.status, None)
        waits: tuple[tuple[Waited, str, str | None], ...] = (
            ("payment_action", "payment_task_token", notification.payment_task_token),
            ("sms_outage_queue", "sms_task_token", notification.sms_task_token),
            ("charge_reconciliation", "charge_task_token", notification.charge_task_token),
        )
        for waited, attribute, token in waits:
            if token is None or not self.store.begin_cancel(notification_id, attribute, token):
                continue
            self._record(notification_id, "cancelling", waited)
            if waited == "charge_reconciliation":
                self.reconciler().cancel_waiting(notification, token)
                return self._cancel_answer(notification_id, NotificationStatus.CANCELLED, waited)
            cause = NotificationCancelled(notification_id)
            # A token spent meanwhile (the wait timed out at this moment): the saga's own end stands.
            self.saga.fail(token, type(cause).__name__, cause.to_dict())
            return self._cancel_answer(notification_id, NotificationStatus.CANCELLING, waited)
        current = self.store.get(notification_id)
        if current.is_final():
            raise NotCancellable("the notification has finished", current, "already_finished")
        raise NotCancellable(
            "the notification's saga is not waiting (only a saga waiting for 3-D Secure, an uncertain "
            "charge or a required SMS can be cancelled)",
            current,
            "not_waiting",
        )

    # --- internals ------------------------------------------------------------------------------
    def _owned(self, client_id: str, notification_id: str) -> Notification:
        notification = self.store.get(notification_id)
        if notification.client_id != client_id:
            raise NotificationNotFound(notification_id)
        return notification

    def _record(self, notification_id: str, outcome: str, waited: Waited) -> None:
        event = TimelineEvent(
            step="CancelNotification",
            outcome=outcome,
            at=self.store.now(),
            details={"waited_for": waited, "requested_by": "shop"},
        )
        self.store.add_event(notification_id, event)

    @staticmethod
    def _cancel_answer(
        notification_id: str, status: NotificationStatus, waited: Waited | None
    ) -> CancelAnswer:
        return CancelAnswer(
            notification_id=notification_id,
            status=status,
            status_url=_status_url(notification_id),
            waited_for=waited,
        )


def shop_refund_key(notification_id: str, idempotency_key: str) -> str:
    """Stripe's Idempotency-Key for a shop's refund: the saga's refund key and a digest of the shop's
    key (any length or characters the API takes, within Stripe's 255)."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"{refund_key(notification_id)}-shop-{digest}"


def _status_url(notification_id: str) -> str:
    return f"/notifications/{notification_id}"


def actions_for(store: NotificationStore) -> ShopActions:
    """The notify API's actions on ``store``: Stripe through the provider layer and Step Functions
    through boto3, each client built on first use."""
    from functools import lru_cache

    import boto3

    from tidings import providers
    from tidings.saga.callbacks import TaskTokenResumer
    from tidings.saga.reconcile import Reconciler
    from tidings.saga.steps import SagaSteps

    steps = SagaSteps(
        store=store, payment_gateway=providers.get_payment_gateway, email_channel=_none, sms_channel=_none
    )
    saga = TaskTokenResumer(lru_cache(maxsize=1)(lambda: boto3.client("stepfunctions")))
    return ShopActions(
        store=store, steps=steps, saga=saga, reconciler=lru_cache(maxsize=1)(lambda: Reconciler(steps, saga))
    )


def _none(_name: str) -> Any:
    raise LookupError("the notify API sends no e-mail or SMS")
