"""The notification saga's state machine, built from one description of each step.

``make asl`` writes ``statemachine/notification_saga.asl.json`` from :func:`build`; a unit test fails when
the committed file and the builder's output differ, so the JSON is never edited by hand. The builder lives
in the layer, next to the table it shares with its reader (`tidings.saga.result_paths`, read by
`tidings.saga.outcome`), so it is typed, linted and importable like the rest of the library; no handler
imports it.

The definition stays on JSONPath (``Parameters``, ``ResultSelector``, ``ResultPath``): JSONata and
Variables do not run on moto's interpreter, which runs the real definition in the local system.
Numeric settings are ``DefinitionSubstitutions`` written without quotes (``"MaxAttempts":
${EmailRetryMaxAttempts}``), so the file is JSON only once CloudFormation has substituted them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tidings import errors
from tidings.notifications.models import NOT_REQUESTED
from tidings.saga import result_paths as paths
from tidings.saga.result_paths import Channel, Step

type Json = bool | int | float | str | Substitution | list[Json] | dict[str, Json] | None
type State = dict[str, Json]

COMMENT = (
    "Tidings notification saga: charge the card, e-mail the receipt, text the customer; fall back, park "
    "or refund so every notification ends in one definite status."
)


@dataclass(frozen=True)
class Substitution:
    """A number the template substitutes (``${Name}`` unquoted in the file)."""

    name: str


def arn(name: str) -> str:
    """A string the template substitutes: a function ARN or a queue URL."""
    return f"${{{name}}}"


# --- the error names Retry and Catch match: the typed errors' class names ---------------------------
def _names(*types: type[Exception]) -> list[Json]:
    return [error.__name__ for error in types]


PAYMENT_TRANSIENT = _names(
    errors.RateLimited,
    errors.ProviderUnavailable,
    errors.NetworkError,
    errors.ProviderTimeout,
    errors.CircuitOpen,
    errors.IdempotencyConflict,
)
#: An open breaker is not retried on the same provider: the delivery falls back at once.
DELIVERY_TRANSIENT = [name for name in PAYMENT_TRANSIENT if name != errors.CircuitOpen.__name__]
PAYMENT_REFUSED = _names(errors.InvalidRequest, errors.AuthenticationFailed, errors.ResourceNotFound)
LAMBDA_SERVICE_ERRORS: list[Json] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
ANY_ERROR: list[Json] = ["States.ALL"]


# --- Retry blocks, written once ----------------------------------------------------------------------
def _retry(
    errors_: list[Json], interval: Json, attempts: Json, backoff: Json, max_delay: Json = None
) -> State:
    block: State = {
        "ErrorEquals": errors_,
        "IntervalSeconds": interval,
        "MaxAttempts": attempts,
        "BackoffRate": backoff,
    }
    if max_delay is not None:
        block["MaxDelaySeconds"] = max_delay
    block["JitterStrategy"] = "FULL"
    return block


def provider_retry(errors_: list[Json], settings: str) -> State:
    """Transient provider errors, retried with the template's ``<settings>Retry*`` parameters."""
    return _retry(
        errors_,
        Substitution(f"{settings}RetryIntervalSeconds"),
        Substitution(f"{settings}RetryMaxAttempts"),
        Substitution(f"{settings}RetryBackoffRate"),
        Substitution(f"{settings}RetryMaxDelaySeconds"),
    )


#: The function timed out, ran out of memory or its container died: safe to replay where a Stripe
#: idempotency key guards it. Step Functions names the error after the invoke's ``errorType`` when the
#: runtime gives one (``Sandbox.Timedout`` for a timeout, ``Runtime.ExitError`` for a dead process) and
#: ``Lambda.Unknown`` when it gives none.
LAMBDA_TIMEOUT_RETRY = _retry(["Lambda.Unknown", "Sandbox.Timedout", "Runtime.ExitError"], 2, 2, 2)
LAMBDA_SERVICE_RETRY = _retry(LAMBDA_SERVICE_ERRORS, 1, 3, 2)
#: SQS and the outcome's own write: retried on anything, a few times.
ANY_ERROR_RETRY = _retry(ANY_ERROR, 1, 5, 2)


def payment_retries(settings: str) -> list[Json]:
    return [provider_retry(PAYMENT_TRANSIENT, settings), LAMBDA_TIMEOUT_RETRY, LAMBDA_SERVICE_RETRY]


def catch(errors_: list[Json], into: Step, then: str) -> State:
    return {"ErrorEquals": errors_, "ResultPath": into.error_path, "Next": then}


# --- state shapes -------------------------------------------------------------------------------------
def task(
    step: Step,
    comment: str,
    resource: str,
    parameters: State,
    *,
    then: str,
    selector: State | None = None,
    timeout: Json = None,
    retry: Sequence[Json] = (),
    catches: Sequence[Json] = (),
) -> State:
    """A Task state that keeps its input and writes its result to the step's key."""
    state: State = {"Type": "Task", "Comment": comment, "Resource": resource, "Parameters": parameters}
    if timeout is not None:
        state["TimeoutSeconds"] = timeout
    if selector is not None:
        state["ResultSelector"] = selector
    state["ResultPath"] = step.result_path
    if retry:
        state["Retry"] = list(retry)
    if catches:
        state["Catch"] = list(catches)
    state["Next"] = then
    return state


def payload_fields(fields: Sequence[str]) -> State:
    """A Lambda result reduced to the fields named (the rest of the answer stays out of the state)."""
    return {f"{field}.$": f"$.Payload.{field}" for field in fields}


def invoke(
    step: Step,
    comment: str,
    function: str,
    payload: State,
    returns: Sequence[str],
    *,
    then: str,
    retry: Sequence[Json],
    catches: Sequence[Json],
) -> State:
    """A Lambda step: the payload carries ids (and the try number), the result only the fields named."""
    return task(
        step,
        comment,
        "arn:aws:states:::lambda:invoke",
        {"FunctionName": arn(function), "Payload": payload},
        selector=payload_fields(returns),
        then=then,
        retry=retry,
        catches=catches,
    )


def notification_id() -> State:
    return {"notification_id.$": f"$.{paths.NOTIFICATION_ID}"}


def request_id() -> State:
    return {"request_id.$": f"$.{paths.REQUEST_ID}"}


def attempt() -> State:
    return {"attempt.$": "$$.State.RetryCount"}


def channel_message(channel: Channel) -> State:
    """A parked delivery's message: the channel and the notification (its consumer reads the rest)."""
    message: State = {"kind": channel.name, "channel": channel.name}
    return message | notification_id()


def park(step: Step, comment: str, queue: str, body: State, *, then: str) -> State:
    """Put a message on a queue (ids only, never contact details) and go on; SQS errors are retried."""
    return task(
        step,
        comment,
        "arn:aws:states:::sqs:sendMessage",
        # Every parked message (and so every dead-letter body) carries the API call's request id.
        {"QueueUrl": arn(queue), "MessageBody": body | request_id()},
        selector={"message_id.$": "$.MessageId"},
        then=then,
        retry=[ANY_ERROR_RETRY],
    )


# --- a caught error, shaped for a dead-letter body -------------------------------------------------
#: A Lambda function error's Cause: the runtime's JSON (errorMessage, errorType, requestId, stackTrace).
LAMBDA_ERROR_CAUSE = '{*"errorMessage"*'


def read_error_state(step: Step) -> str:
    """The first state of the shaping of ``step``'s caught error: go there instead of the park."""
    return f"Read{step.state}Error"


def shaped_error(step: Step, then: str) -> dict[str, State]:
    """States that leave only the error type and message in ``step``'s caught error, then go to ``then``.

    A function error's Cause is the runtime's JSON, Python stack trace included; a dead-letter body
    must carry the type and message only. So the Cause is parsed and replaced by its ``errorMessage``
    (``{"Error": ..., "Cause": <message>}``, the shape Step Functions itself uses). Any other Cause
    (a Lambda service error, a timeout: text without a stack trace) is kept as it is. Error paths only:
    no notification that goes well enters these states.
    """
    error = step.error_path
    read, parse, keep = (
        read_error_state(step),
        f"Parse{step.state}ErrorCause",
        f"Keep{step.state}ErrorMessage",
    )
    return {
        read: {
            "Type": "Choice",
            "Comment": "A function error's Cause carries a stack trace: keep only its message.",
            "Choices": [
                {
                    "And": [
                        {"Variable": f"{error}.Cause", "IsPresent": True},
                        {"Variable": f"{error}.Cause", "IsString": True},
                        {"Variable": f"{error}.Cause", "StringMatches": LAMBDA_ERROR_CAUSE},
                    ],
                    "Next": parse,
                }
            ],
            "Default": then,
        },
        parse: {
            "Type": "Pass",
            "Parameters": {"Error.$": f"{error}.Error", "Cause.$": f"States.StringToJson({error}.Cause)"},
            "ResultPath": error,
            "Next": keep,
        },
        keep: {
            "Type": "Pass",
            "Parameters": {"Error.$": f"{error}.Error", "Cause.$": f"{error}.Cause.errorMessage"},
            "ResultPath": error,
            "Next": then,
        },
    }


def choice(comment: str, variable: str, equals: str, then: str, otherwise: str) -> State:
    return {
        "Type": "Choice",
        "Comment": comment,
        "Choices": [{"Variable": variable, "StringEquals": equals, "Next": then}],
        "Default": otherwise,
    }


def policy_check(channel: Channel, comment: str, if_required: str, otherwise: str) -> State:
    return choice(comment, f"$.{paths.DELIVERY_POLICY}.{channel.name}", "required", if_required, otherwise)


# --- the two deliveries, from one description ----------------------------------------------------------
@dataclass(frozen=True)
class Delivery:
    """What differs between the receipt e-mail and the SMS; :func:`deliver` writes the states of either."""

    channel: Channel
    #: "the receipt e-mail", as the send states' comments say what they send.
    what: str
    function: str
    providers: tuple[str, str]
    #: The template's retry parameters (``<settings>RetryIntervalSeconds``, ...).
    settings: str
    #: Where the saga goes once the channel is done with.
    then: str
    rejection_comment: str
    outage_comment: str
    #: Where a channel whose providers both stayed down goes: required, then best-effort.
    outage_required: str
    outage_best_effort: str
    #: The channel's queue states, after its choices.
    parks: tuple[tuple[str, State], ...]

    @property
    def rejection_check(self) -> str:
        return f"Check{self.channel.label}PolicyAfterRejection"

    @property
    def outage_check(self) -> str:
        return f"Check{self.channel.label}PolicyAfterOutage"


def deliver(delivery: Delivery) -> dict[str, State]:
    """Primary provider, fallback, the policy checks after a refusal and an outage, then the queues."""
    channel = delivery.channel
    states: dict[str, State] = {}
    fallbacks = (delivery.channel.fallback.state, delivery.outage_check)
    for send, provider, on_outage in zip(channel.sends, delivery.providers, fallbacks, strict=True):
        states[send.state] = invoke(
            send,
            f"Send {delivery.what} through {provider}; transient failures retry here, then fall back.",
            delivery.function,
            notification_id() | {"provider": provider} | attempt(),
            ("provider", "provider_message_id", "deduplicated", "skipped"),
            then=delivery.then,
            retry=[provider_retry(DELIVERY_TRANSIENT, delivery.settings), LAMBDA_SERVICE_RETRY],
            catches=[
                # Refused, or the recipient is suppressed: no fallback would (or may) take it.
                catch(
                    _names(errors.InvalidRequest, errors.RecipientSuppressed), send, delivery.rejection_check
                ),
                catch(ANY_ERROR, send, on_outage),
            ],
        )
    states[delivery.rejection_check] = policy_check(
        channel, delivery.rejection_comment, paths.REFUND_PAYMENT.state, delivery.then
    )
    states[delivery.outage_check] = policy_check(
        channel, delivery.outage_comment, delivery.outage_required, delivery.outage_best_effort
    )
    states.update(delivery.parks)
    return states


def _email() -> Delivery:
    email = paths.EMAIL
    return Delivery(
        channel=email,
        what="the receipt e-mail",
        function="SendEmailFunctionArn",
        providers=("sendgrid", "ses"),
        settings="Email",
        then=paths.SMS.primary.state,
        rejection_comment=(
            "The address or content was refused, or the recipient is suppressed (no fallback would or "
            "may take it): a required receipt undoes the payment."
        ),
        outage_comment=(
            "Both e-mail providers stayed down: a required receipt undoes the payment, a best-effort one "
            "is dead-lettered for redrive."
        ),
        outage_required=paths.REFUND_PAYMENT.state,
        outage_best_effort=read_error_state(email.fallback),
        parks=(
            *shaped_error(email.fallback, email.park.state).items(),
            (
                email.park.state,
                park(
                    email.park,
                    "Keep the receipt for a redrive (tidings dlq redrive email); contact details stay in "
                    "the notification table.",
                    "EmailDeadLetterQueueUrl",
                    channel_message(email) | {"error.$": email.fallback.error_path},
                    then=paths.SMS.primary.state,
                ),
            ),
        ),
    )


def _sms() -> Delivery:
    sms = paths.SMS
    wait = sms.park_and_wait
    assert wait is not None
    message = channel_message(sms)
    return Delivery(
        channel=sms,
        what="the SMS",
        function="SendSmsFunctionArn",
        providers=("twilio", "sns"),
        settings="Sms",
        then=paths.RECORD_OUTCOME.state,
        rejection_comment=(
            "The number or text was refused, or the recipient is suppressed (no fallback would or may "
            "take it): a required SMS undoes the payment."
        ),
        outage_comment=(
            "Both SMS providers stayed down: park the SMS on the outage queue; a required SMS holds the "
            "saga until it is sent or given up."
        ),
        outage_required=wait.state,
        outage_best_effort=sms.park.state,
        parks=(
            (
                sms.park.state,
                park(
                    sms.park,
                    "Retried later with growing delay by the RetryDelivery function, then dead-lettered "
                    "after its last try.",
                    "SmsOutageQueueUrl",
                    message,
                    then=paths.RECORD_OUTCOME.state,
                ),
            ),
            (
                wait.state,
                task(
                    wait,
                    "Required SMS: the RetryDelivery function resumes the saga when the SMS is sent, or "
                    "fails it after the last try.",
                    "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    {
                        "QueueUrl": arn("SmsOutageQueueUrl"),
                        "MessageBody": message | request_id() | {"task_token.$": "$$.Task.Token"},
                    },
                    timeout=Substitution("SmsOutageWaitTimeoutSeconds"),
                    then=paths.RECORD_OUTCOME.state,
                    catches=[catch(ANY_ERROR, wait, paths.REFUND_PAYMENT.state)],
                ),
            ),
        ),
    )


# --- the saga ------------------------------------------------------------------------------------------
CHECK_PAYMENT_STATUS = "CheckPaymentStatus"
CHECK_CANCELLATION = "CheckCancellation"
CHECK_OUTCOME = "CheckOutcome"
NOTIFICATION_FINISHED = "NotificationFinished"
NOTIFICATION_FAILED = "NotificationFailed"
CHECK_CHARGE_RECONCILIATION = "CheckChargeReconciliation"
CONTINUE_AFTER_RECONCILIATION = "ContinueAfterChargeReconciliation"
CHARGE_AGAIN_AFTER_RECONCILIATION = "ChargeAgainAfterReconciliation"
NOTIFICATION_RECONCILED = "NotificationReconciled"


def _not_requested(channel: Channel) -> State:
    return {"Variable": f"$.{paths.DELIVERY_POLICY}.{channel.name}", "StringEquals": NOT_REQUESTED}


def _first_channel(succeeded: State) -> list[Json]:
    """Choice rules after a successful charge: skip the channels the notification did not ask for.

    Rules only, in the Choice state that is on the path anyway, so the path with both channels enters no
    more states. A channel left out after the e-mail (the SMS of an e-mail-only notification) is skipped
    by its send step instead (it records ``skipped: not_requested`` without a provider call): a Choice
    there would be one more state on every notification's path.
    """
    email, sms = paths.EMAIL, paths.SMS
    return [
        {"And": [succeeded, _not_requested(email), _not_requested(sms)], "Next": paths.RECORD_OUTCOME.state},
        {"And": [succeeded, _not_requested(email)], "Next": sms.primary.state},
        succeeded | {"Next": email.primary.state},
    ]


def _payment() -> dict[str, State]:
    charge, wait, cancel = paths.CHARGE_PAYMENT, paths.WAIT_FOR_PAYMENT_ACTION, paths.CANCEL_PAYMENT
    send_receipt, record = paths.EMAIL.primary.state, paths.RECORD_OUTCOME.state
    payment_intent: State = {"payment_intent_id.$": f"{charge.result_path}.payment_intent_id"}
    return {
        charge.state: invoke(
            charge,
            "Create and confirm the Stripe PaymentIntent; its Idempotency-Key comes from the notification "
            "id, so a retry never charges twice.",
            "ChargePaymentFunctionArn",
            notification_id() | attempt(),
            ("status", "payment_intent_id"),
            then=CHECK_PAYMENT_STATUS,
            retry=payment_retries("Charge"),
            catches=[
                catch(_names(errors.PaymentDeclined), charge, record),
                catch(PAYMENT_REFUSED, charge, record),
                catch(ANY_ERROR, charge, read_error_state(charge)),
            ],
        ),
        CHECK_PAYMENT_STATUS: {
            "Type": "Choice",
            "Comment": "A charge either succeeded or waits for the customer (3-D Secure); anything else is "
            "unexpected. A succeeded one goes to the first channel asked for (the receipt, else the SMS, "
            "else the end).",
            "Choices": [
                *_first_channel(
                    succeeded={"Variable": f"{charge.result_path}.status", "StringEquals": "succeeded"}
                ),
                {
                    "Variable": f"{charge.result_path}.status",
                    "StringEquals": "requires_action",
                    "Next": wait.state,
                },
            ],
            "Default": paths.PARK_UNCERTAIN_CHARGE.state,
        },
        wait.state: task(
            wait,
            "Store the task token and wait: the Stripe webhook (payment_intent.succeeded / payment_failed) "
            "resumes the saga.",
            "arn:aws:states:::lambda:invoke.waitForTaskToken",
            {
                "FunctionName": arn("AwaitPaymentActionFunctionArn"),
                "Payload": notification_id() | payment_intent | {"task_token.$": "$$.Task.Token"},
            },
            timeout=Substitution("PaymentActionTimeoutSeconds"),
            then=send_receipt,
            retry=[LAMBDA_SERVICE_RETRY],
            catches=[
                catch(_names(errors.PaymentDeclined), wait, record),
                catch(ANY_ERROR, wait, cancel.state),
            ],
        ),
        cancel.state: invoke(
            cancel,
            "The customer did not finish 3-D Secure in time: cancel the PaymentIntent (unless it succeeded "
            "meanwhile).",
            "CancelPaymentFunctionArn",
            notification_id() | payment_intent | attempt(),
            ("outcome",),
            then=CHECK_CANCELLATION,
            retry=payment_retries("Refund"),
            catches=[catch(ANY_ERROR, cancel, read_error_state(cancel))],
        ),
        CHECK_CANCELLATION: {
            "Type": "Choice",
            "Comment": "A payment that succeeded just before the timeout is kept and its receipt sent, "
            "unless the shop cancelled the notification: then it is refunded.",
            "Choices": [
                {
                    "And": [
                        {"Variable": f"{cancel.result_path}.outcome", "StringEquals": "already_succeeded"},
                        {
                            "Variable": f"{wait.error_path}.Error",
                            "StringEquals": errors.NotificationCancelled.__name__,
                        },
                    ],
                    "Next": paths.REFUND_PAYMENT.state,
                },
                {
                    "Variable": f"{cancel.result_path}.outcome",
                    "StringEquals": "already_succeeded",
                    "Next": send_receipt,
                },
            ],
            "Default": record,
        },
    }


def _compensation() -> dict[str, State]:
    refund, record = paths.REFUND_PAYMENT, paths.RECORD_OUTCOME.state
    dead_letter = "CompensationDeadLetterQueueUrl"
    return {
        refund.state: invoke(
            refund,
            "Compensate: refund the payment (idempotent: its key comes from the notification id).",
            "RefundPaymentFunctionArn",
            notification_id() | attempt(),
            ("refund_id", "status"),
            then=record,
            retry=payment_retries("Refund"),
            catches=[catch(ANY_ERROR, refund, read_error_state(refund))],
        ),
        **shaped_error(refund, paths.PARK_REFUND.state),
        paths.PARK_REFUND.state: park(
            paths.PARK_REFUND,
            "The refund could not be made: the case goes to the compensation dead-letter queue (alarmed), "
            "never dropped.",
            dead_letter,
            {"kind": "refund"} | notification_id() | {"error.$": refund.error_path},
            then=record,
        ),
        **shaped_error(paths.CHARGE_PAYMENT, paths.PARK_UNCERTAIN_CHARGE.state),
        paths.PARK_UNCERTAIN_CHARGE.state: park(
            paths.PARK_UNCERTAIN_CHARGE,
            "The charge's outcome is unknown (retries spent, or an unexpected status): reconcile it from the "
            "compensation dead-letter queue.",
            dead_letter,
            {"kind": "charge"} | notification_id() | {"detail.$": "$"},
            then=record,
        ),
        **shaped_error(paths.CANCEL_PAYMENT, paths.PARK_CANCELLATION.state),
        paths.PARK_CANCELLATION.state: park(
            paths.PARK_CANCELLATION,
            "The PaymentIntent could not be cancelled: reconcile it from the compensation dead-letter queue.",
            dead_letter,
            {"kind": "cancel"} | notification_id() | {"error.$": paths.CANCEL_PAYMENT.error_path},
            then=record,
        ),
    }


def outcome_input() -> State:
    """RecordOutcome's payload: the notification, its policy, and only what the status depends on.

    Each key is selected by name (`result_paths.outcome_inputs`); the notify API starts every execution
    with them null, since a JSONPath that selects a missing key fails the state.
    """
    selected: State = notification_id() | {f"{paths.DELIVERY_POLICY}.$": f"$.{paths.DELIVERY_POLICY}"}
    return selected | {f"{key}.$": f"$.{key}" for key in paths.outcome_inputs()}


def _finish() -> dict[str, State]:
    record = paths.RECORD_OUTCOME
    return {
        record.state: task(
            record,
            "Decide the one final status from what happened and record it with every channel's outcome.",
            "arn:aws:states:::lambda:invoke",
            {"FunctionName": arn("RecordOutcomeFunctionArn"), "Payload": outcome_input()},
            selector=payload_fields(("notification_id", "status", "reason")),
            then=CHECK_OUTCOME,
            retry=[LAMBDA_SERVICE_RETRY, ANY_ERROR_RETRY],
        ),
        CHECK_OUTCOME: {
            "Type": "Choice",
            "Comment": "An uncertain charge waits for ReconcilePayment; any other failed notification fails "
            "the execution, so the ExecutionsFailed alarm sees it.",
            "Choices": [
                {
                    "And": [
                        {"Variable": f"{record.result_path}.reason", "IsString": True},
                        {
                            "Variable": f"{record.result_path}.reason",
                            "StringEquals": paths.CHARGE_OUTCOME_UNKNOWN,
                        },
                    ],
                    "Next": paths.AWAIT_CHARGE_RECONCILIATION.state,
                },
                {
                    "Variable": f"{record.result_path}.status",
                    "StringEquals": "failed",
                    "Next": NOTIFICATION_FAILED,
                },
            ],
            "Default": NOTIFICATION_FINISHED,
        },
        NOTIFICATION_FINISHED: {"Type": "Succeed", "OutputPath": record.result_path},
        NOTIFICATION_FAILED: {
            "Type": "Fail",
            "Error": "NotificationFailed",
            "Cause": "See the notification's timeline and the compensation dead-letter queue.",
        },
    }


def fresh_state(*, keep: Sequence[str] = ()) -> State:
    """A Pass state's ``Parameters`` that start the saga's state over: the execution input's ids and
    policy carried, every key RecordOutcome reads null again (as the notify API starts it), and ``keep``."""
    outcome_keys = set(paths.outcome_inputs())
    state: State = {}
    for key in paths.execution_input("", {}):
        state[key if key in outcome_keys else f"{key}.$"] = None if key in outcome_keys else f"$.{key}"
    return state | {f"{key}.$": f"$.{key}" for key in keep}


def _reconciliation() -> dict[str, State]:
    """An uncertain charge, after RecordOutcome recorded ``failed``/``charge_outcome_unknown``: the saga
    waits until ReconcilePayment has asked Stripe, then goes on from where it stopped."""
    wait = paths.AWAIT_CHARGE_RECONCILIATION
    decision = f"{wait.result_path}.decision"
    restart = fresh_state(keep=(wait.result,))
    return {
        wait.state: task(
            wait,
            "Store the task token and wait: ReconcilePayment (tidings dlq redrive compensation) asks Stripe "
            "whether the charge exists and resumes the saga with what to do.",
            "arn:aws:states:::lambda:invoke.waitForTaskToken",
            {
                "FunctionName": arn("AwaitChargeReconciliationFunctionArn"),
                "Payload": notification_id() | {"task_token.$": "$$.Task.Token"},
            },
            then=CHECK_CHARGE_RECONCILIATION,
            retry=[LAMBDA_SERVICE_RETRY],
        ),
        CHECK_CHARGE_RECONCILIATION: {
            "Type": "Choice",
            "Comment": "The charge exists: deliver. Stripe has no record and the policy says charge: charge "
            "again with the same idempotency key. Otherwise ReconcilePayment recorded the final status.",
            "Choices": [
                {"Variable": decision, "StringEquals": "continue", "Next": CONTINUE_AFTER_RECONCILIATION},
                {
                    "Variable": decision,
                    "StringEquals": "charge_again",
                    "Next": CHARGE_AGAIN_AFTER_RECONCILIATION,
                },
            ],
            "Default": NOTIFICATION_RECONCILED,
        },
        CONTINUE_AFTER_RECONCILIATION: {
            "Type": "Pass",
            "Comment": "Forget the uncertain charge and its outcome: the receipt and the SMS go out as after "
            "a charge that succeeded.",
            "Parameters": restart,
            "Next": paths.EMAIL.primary.state,
        },
        CHARGE_AGAIN_AFTER_RECONCILIATION: {
            "Type": "Pass",
            "Comment": "Forget the uncertain charge and its outcome, and charge as the first time.",
            "Parameters": restart,
            "Next": paths.CHARGE_PAYMENT.state,
        },
        NOTIFICATION_RECONCILED: {"Type": "Succeed", "OutputPath": wait.result_path},
    }


def build() -> State:
    """The whole definition, states in reading order: payment, e-mail, SMS, compensation, the end."""
    states: dict[str, State] = {}
    parts = (_payment(), deliver(_email()), deliver(_sms()), _compensation(), _finish(), _reconciliation())
    for part in parts:
        overlap = states.keys() & part.keys()
        if overlap:
            raise ValueError(f"states defined twice: {sorted(overlap)}")
        states.update(part)
    return {
        "Comment": COMMENT,
        "StartAt": paths.CHARGE_PAYMENT.state,
        "States": {name: state for name, state in states.items()},
    }


# --- the file ------------------------------------------------------------------------------------------
def _encode(value: Json, depth: int) -> str:
    """JSON as ``json.dumps(indent=2)`` writes it, with substituted numbers left unquoted."""
    if isinstance(value, Substitution):
        return f"${{{value.name}}}"
    inner, outer = "  " * (depth + 1), "  " * depth
    if isinstance(value, dict) and value:
        members = (f"{inner}{json.dumps(key)}: {_encode(item, depth + 1)}" for key, item in value.items())
        return "{\n" + ",\n".join(members) + f"\n{outer}}}"
    if isinstance(value, list) and value:
        return "[\n" + ",\n".join(f"{inner}{_encode(item, depth + 1)}" for item in value) + f"\n{outer}]"
    return json.dumps(value)


def render() -> str:
    """The text of ``statemachine/notification_saga.asl.json``."""
    return _encode(build(), 0) + "\n"


DEFAULT_PATH = Path("statemachine/notification_saga.asl.json")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the notification saga's state machine definition.")
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from the builder")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if args.path.read_text() != text:
            print(f"{args.path} is stale: run make asl", file=sys.stderr)
            return 1
        return 0
    args.path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
