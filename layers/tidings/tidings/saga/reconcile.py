"""Settling a payment case from the compensation dead-letter queue, once its cause is fixed.

A case names a notification and what could not be done (``kind``): ``refund`` (the saga's refund kept
failing), ``cancel`` (a 3-D Secure payment could not be cancelled) or ``charge`` (the charge's outcome
was unknown). ``tidings dlq redrive compensation`` puts cases back on the compensation retry queue; the
ReconcilePayment function settles each one with the same idempotency keys the saga used, so a case
redriven twice never refunds or cancels twice. A case that still fails goes back to the dead-letter
queue (the retry queue's redrive policy), and the alarm stays on.

An uncertain charge's saga does not end: after RecordOutcome recorded ``failed`` /
``charge_outcome_unknown`` it waits in AwaitChargeReconciliation, and the ``charge`` case resumes it
once Stripe has said whether the charge exists (docs/saga.md, "An uncertain charge").

``CompensationConsumer().handle(event, context)`` is all ``functions/reconcile_payment`` calls: a case
that still fails is reported as a batch item failure, so after the retry queue's maxReceiveCount it
returns to the dead-letter queue, whose alarm keeps paging until a person or a later redrive settles it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, Literal, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from tidings.notifications.models import Notification, NotificationStatus
from tidings.observability import logger, metrics
from tidings.saga.result_paths import CHARGE_OUTCOME_UNKNOWN
from tidings.saga.results import ChargeReconciled
from tidings.saga.steps import SagaSteps, payment_intent_of

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

    from tidings.providers.models import PaymentResult
    from tidings.saga.settings import ReconcileSettings

_UNFINISHED = {"requires_action", "requires_payment_method", "requires_confirmation", "processing"}
#: How far Stripe's clock may be behind ours when we look for a charge created after the saga started.
CLOCK_MARGIN = timedelta(minutes=5)

FoundChargePolicy = Literal["continue", "void"]
MissingChargePolicy = Literal["not_taken", "charge_again"]


class CompensationCase(BaseModel):
    """A message of the compensation queues (ids only; the error the saga caught rides along)."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["refund", "cancel", "charge"]
    notification_id: str


class CaseSettled(BaseModel):
    """What settling a case did: ``outcome`` is the reason recorded (``charge_reconciled_not_found``...),
    ``status`` the final status recorded (None while the saga goes on), ``resumed`` what the waiting saga
    was told (None when no saga waited)."""

    model_config = ConfigDict(frozen=True)

    notification_id: str
    kind: str
    outcome: str
    status: NotificationStatus | None = None
    resumed: str | None = None


class SagaResumer(Protocol):
    """``tidings.saga.callbacks.TaskTokenResumer``: False when the token was spent."""

    def resume(self, task_token: str, output: Mapping[str, object]) -> bool: ...


class _NoSaga:
    def resume(self, task_token: str, output: Mapping[str, object]) -> bool:
        return False


class SagaNotWaitingYet(RuntimeError):
    """The uncertain charge's execution still runs but has not stored its task token yet (the case was
    redriven within moments of its park): the message is retried, and then finds the saga waiting."""


@dataclass
class Reconciler:
    steps: SagaSteps
    saga: SagaResumer = field(default_factory=_NoSaga)
    found_charge_policy: FoundChargePolicy = "continue"
    missing_charge_policy: MissingChargePolicy = "not_taken"
    #: Whether the execution (by ARN) is still RUNNING.
    execution_running: Callable[[str], bool] = field(default=lambda _arn: False)

    def handle(self, case: CompensationCase) -> CaseSettled:
        notification_id, kind = case.notification_id, case.kind
        notification = self.steps.store.get(notification_id)
        refunded = notification.payment.refund_id is not None
        if kind == "refund":
            return self._refund(notification_id, kind, "refunded_after_redrive", refunded=refunded)
        if kind == "cancel":
            outcome = self.steps.cancel_payment(notification_id, payment_intent_of(notification))
            if outcome.outcome == "already_succeeded":
                # Paid after the saga gave up on it: nobody was told, so give the money back.
                return self._refund(notification_id, kind, "paid_after_timeout_refunded", refunded=refunded)
            return self._finish(
                notification_id, kind, NotificationStatus.PAYMENT_DECLINED, "payment_action_timeout"
            )
        return self._charge(notification)

    # --- an uncertain charge ------------------------------------------------------------------------
    def _charge(self, notification: Notification) -> CaseSettled:
        """Learn what became of an uncertain charge by asking Stripe, never by charging to find out.

        The recorded PaymentIntent is retrieved; with none recorded, the intent is looked up by the
        ``metadata.notification_id`` the charge carried. Then, with the saga waiting on its task token:
        a charge that exists lets the saga go on (receipt and SMS) unless ``found_charge_policy`` is
        ``void`` (refunded, ``compensated``); no record ends ``payment_not_taken``, or, with
        ``missing_charge_policy`` ``charge_again``, sends the saga back to ChargePayment with the same
        idempotency key. Without a waiting saga (an execution from before the wait existed, or one that
        was stopped) the case is settled here alone: a charge found is refunded, since nobody was told.
        An execution still running without a token is about to wait: ``SagaNotWaitingYet`` retries
        the message.
        """
        notification_id = notification.notification_id
        token = notification.charge_task_token
        uncertain = (
            notification.status == NotificationStatus.FAILED
            and notification.status_reason == CHARGE_OUTCOME_UNKNOWN
        )
        if token is None and not uncertain:
            # A duplicate of a case already settled, or the saga already went on: nothing left to do.
            return CaseSettled(notification_id=notification_id, kind="charge", outcome="already_reconciled")
        if (
            token is None
            and notification.execution_arn
            and self.execution_running(notification.execution_arn)
        ):
            raise SagaNotWaitingYet(f"the saga of {notification_id} has not stored its token yet")
        found = self._find(notification)
        if token is not None:
            decided = self._decide(notification_id, found)
            resumed = self.saga.resume(token, decided.model_dump(mode="json"))
            self.steps.store.clear_charge_task_token(notification_id, token)
            if resumed or decided.decision == "finished":
                return CaseSettled(
                    notification_id=notification_id,
                    kind="charge",
                    outcome=decided.reason,
                    status=decided.status,
                    resumed=decided.decision,
                )
            # The wait is gone (the execution was stopped or timed out): settle it here after all.
        return self._settle_alone(notification_id, found)

    def cancel_waiting(self, notification: Notification, task_token: str) -> ChargeReconciled:
        """The shop cancels a saga that waits for its uncertain charge to be reconciled (the notify API
        took ``task_token`` away first): ask Stripe, never charge to find out; cancel an unfinished
        PaymentIntent, refund one that succeeded, end ``cancelled`` and let the saga finish."""
        notification_id = notification.notification_id
        found = self._find(notification)
        reason = "cancelled_not_charged"
        if found is not None:
            status = self._settled_status(notification_id, found)
            if status == "succeeded":
                self._refund_once(notification_id, "cancelled_by_shop")
                reason = "cancelled_refunded"
            else:
                reason = f"cancelled_payment_{status}"
        decided = self._finished(notification_id, NotificationStatus.CANCELLED, reason)
        self.saga.resume(task_token, decided.model_dump(mode="json"))  # a spent token: nothing waits
        return decided

    def _find(self, notification: Notification) -> PaymentResult | None:
        notification_id = notification.notification_id
        gateway = self.steps.payment_gateway()
        payment_intent_id = notification.payment.payment_intent_id
        if payment_intent_id:
            return gateway.retrieve(payment_intent_id)  # type: ignore[no-any-return]
        found: PaymentResult | None = gateway.find_by_metadata(
            "notification_id", notification_id, created_from=self._charge_window_start(notification)
        )
        if found is not None:
            self.steps.store.link_payment_intent(notification_id, found.payment_intent_id)
            self.steps.store.record_payment_intent(notification_id, found.payment_intent_id)
        return found

    def _decide(self, notification_id: str, found: PaymentResult | None) -> ChargeReconciled:
        """Act on Stripe's answer for a waiting saga, and say what the saga does next."""
        store = self.steps.store
        if found is None:
            reason = "charge_reconciled_not_found"
            if self.missing_charge_policy == "charge_again":
                store.set_status(notification_id, NotificationStatus.RUNNING, reason=reason)
                self.steps.record_event(
                    notification_id, "ReconcilePayment", "charging_again", "stripe", None, {"reason": reason}
                )
                return ChargeReconciled(
                    notification_id=notification_id, decision="charge_again", reason=reason
                )
            return self._finished(notification_id, NotificationStatus.PAYMENT_NOT_TAKEN, reason)
        status = self._settled_status(notification_id, found)
        if status != "succeeded":
            return self._finished(
                notification_id, NotificationStatus.PAYMENT_DECLINED, f"charge_reconciled_{status}"
            )
        if self.found_charge_policy == "void":
            self._refund_once(notification_id, "charge_reconciled_void")
            return self._finished(notification_id, NotificationStatus.COMPENSATED, "charge_reconciled_void")
        reason = "charge_reconciled_found"
        store.set_payment_status(notification_id, "succeeded")
        store.set_status(notification_id, NotificationStatus.RUNNING, reason=reason)
        self.steps.record_event(
            notification_id,
            "ReconcilePayment",
            "charge_found",
            "stripe",
            None,
            {"reason": reason, "payment_intent_id": found.payment_intent_id},
        )
        return ChargeReconciled(
            notification_id=notification_id,
            decision="continue",
            reason=reason,
            payment_intent_id=found.payment_intent_id,
        )

    def _settle_alone(self, notification_id: str, found: PaymentResult | None) -> CaseSettled:
        if found is None:
            return self._finish(
                notification_id, "charge", NotificationStatus.PAYMENT_NOT_TAKEN, "charge_reconciled_not_found"
            )
        status = self._settled_status(notification_id, found)
        if status == "succeeded":
            return self._refund(notification_id, "charge", "charge_reconciled_refunded", refunded=False)
        return self._finish(
            notification_id, "charge", NotificationStatus.PAYMENT_DECLINED, f"charge_reconciled_{status}"
        )

    def _settled_status(self, notification_id: str, found: PaymentResult) -> str:
        """The intent's status once an unfinished one is cancelled (unless it succeeded meanwhile)."""
        if found.status not in _UNFINISHED:
            return found.status
        cancelled = self.steps.cancel_payment(notification_id, found.payment_intent_id)
        return "succeeded" if cancelled.outcome == "already_succeeded" else found.status

    @staticmethod
    def _charge_window_start(notification: Notification) -> int:
        """The earliest a charge for this notification can have been created, as a Unix time (with a
        margin for the difference between our clock and Stripe's)."""
        first_possible_use = notification.started_at or notification.created_at
        started = datetime.fromisoformat(first_possible_use.replace("Z", "+00:00"))
        return int((started - CLOCK_MARGIN).timestamp())

    # --- the end of a case --------------------------------------------------------------------------
    def _refund_once(self, notification_id: str, reason: str) -> None:
        if self.steps.store.get(notification_id).payment.refund_id is None:
            self.steps.refund_payment(notification_id, reason=reason)

    def _finished(self, notification_id: str, status: NotificationStatus, reason: str) -> ChargeReconciled:
        self._finish(notification_id, "charge", status, reason)
        return ChargeReconciled(
            notification_id=notification_id, decision="finished", status=status, reason=reason
        )

    def _refund(self, notification_id: str, kind: str, reason: str, *, refunded: bool) -> CaseSettled:
        if not refunded:
            self.steps.refund_payment(notification_id, reason=reason)
        return self._finish(notification_id, kind, NotificationStatus.COMPENSATED, reason)

    def _finish(
        self, notification_id: str, kind: str, status: NotificationStatus, reason: str
    ) -> CaseSettled:
        self.steps.store.finish(notification_id, status, reason)
        self.steps.record_event(
            notification_id, "ReconcilePayment", status, "stripe", None, {"reason": reason}
        )
        return CaseSettled(notification_id=notification_id, kind=kind, outcome=reason, status=status)


def reconciler_for(settings: ReconcileSettings) -> Reconciler:
    """The saga's steps, the task-token resumer (its Step Functions client built on the first resume)
    and the template's policy in ``settings``."""
    import boto3

    from tidings.saga.callbacks import TaskTokenResumer
    from tidings.saga.steps import get_steps

    stepfunctions = lru_cache(maxsize=1)(lambda: boto3.client("stepfunctions"))

    def running(execution_arn: str) -> bool:
        described = stepfunctions().describe_execution(executionArn=execution_arn)
        return bool(described["status"] == "RUNNING")

    return Reconciler(
        get_steps(),
        TaskTokenResumer(stepfunctions),
        found_charge_policy=settings.found_charge_policy,
        missing_charge_policy=settings.missing_charge_policy,
        execution_running=running,
    )


class CompensationConsumer:
    """ReconcilePayment's composition root: the compensation retry queue's consumer for one container,
    one case a record (the reconciler built on the first case)."""

    def __init__(self, settings: ReconcileSettings) -> None:
        self.settings = settings
        self.batch = BatchProcessor(event_type=EventType.SQS)

    def handle(self, event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        return process_partial_response(
            event=event, record_handler=self.settle, processor=self.batch, context=context
        )

    def settle(self, record: SQSRecord) -> None:
        case = CompensationCase.model_validate_json(record.body)
        logger.append_keys(notification_id=case.notification_id, kind=case.kind)
        settled = self.reconciler.handle(case)
        logger.info("compensation case settled", outcome=settled.outcome, resumed=settled.resumed)
        metrics.add_metric(name="CompensationSettled", unit=MetricUnit.Count, value=1)

    @cached_property
    def reconciler(self) -> Reconciler:
        return reconciler_for(self.settings)
