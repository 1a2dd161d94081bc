"""Where each saga step writes into the execution state: the table the state machine and its reader share.

`tidings.saga.definition` builds ``statemachine/notification_saga.asl.json`` from these names, and
`tidings.saga.outcome` reads the state RecordOutcome receives through them, so a step renamed here is
renamed in both and neither spells a state name or a key of its own. Every forward step keeps its input
and writes ``$.<key>``: its result, or the error a Catch caught (the aws-samples saga pattern).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """A state of the saga and the keys of the execution state it writes."""

    #: The state's name: what the Step Functions console and the notification's timeline show.
    state: str
    #: The key its result is written under (``ResultPath: "$.<result>"``).
    result: str
    #: The key a caught error is written under, for a state that catches into the state.
    error: str | None = None

    @property
    def result_path(self) -> str:
        return f"$.{self.result}"

    @property
    def error_path(self) -> str:
        if self.error is None:
            raise ValueError(f"{self.state} writes no error into the state")
        return f"$.{self.error}"

    @property
    def caught(self) -> str:
        """The key a caught error is written under."""
        return self.error_path.removeprefix("$.")

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.result,) if self.error is None else (self.result, self.error)


def step(state: str, result: str | None = None, *, catches: bool = True) -> Step:
    """A step that writes ``<state>Result`` (unless named otherwise) and, if it catches, ``<state>Error``."""
    return Step(state, result or f"{state}Result", f"{state}Error" if catches else None)


@dataclass(frozen=True)
class Channel:
    """One delivery channel's steps: its key in ``delivery_policy`` and ``channels``, and where they write."""

    name: str
    #: The label in the channel's own state names (``CheckEmailPolicyAfterOutage``).
    label: str
    primary: Step
    fallback: Step
    #: Best-effort: the message waits on a queue and the saga goes on.
    park: Step
    #: Required (SMS only): the message waits on the outage queue and the saga waits for it.
    park_and_wait: Step | None = None

    @property
    def sends(self) -> tuple[Step, Step]:
        return (self.primary, self.fallback)


#: The execution input's keys (set by the notify API when it starts the execution).
NOTIFICATION_ID = "notification_id"
DELIVERY_POLICY = "delivery_policy"
#: The API call's request id, carried into parked messages (dead-letter bodies) and the steps' logs.
REQUEST_ID = "request_id"

CHARGE_PAYMENT = step("ChargePayment")
WAIT_FOR_PAYMENT_ACTION = step("WaitForPaymentAction")
CANCEL_PAYMENT = step("CancelPayment")
REFUND_PAYMENT = step("RefundPayment")
PARK_UNCERTAIN_CHARGE = step("ParkUncertainChargeInDeadLetterQueue", "ParkChargeResult", catches=False)
PARK_CANCELLATION = step("ParkCancellationInDeadLetterQueue", "ParkCancellationResult", catches=False)
PARK_REFUND = step("ParkRefundInDeadLetterQueue", "ParkRefundResult", catches=False)
RECORD_OUTCOME = step("RecordOutcome", "Outcome", catches=False)
#: RecordOutcome's reason for a charge whose outcome is unknown; the saga then waits for reconciliation.
CHARGE_OUTCOME_UNKNOWN = "charge_outcome_unknown"
#: An uncertain charge's saga waits here (after RecordOutcome said ``charge_outcome_unknown``) until
#: ReconcilePayment has asked Stripe and resumes it with its decision.
AWAIT_CHARGE_RECONCILIATION = step("AwaitChargeReconciliation", "ChargeReconciliationResult", catches=False)

EMAIL = Channel(
    name="email",
    label="Email",
    primary=step("SendReceiptEmail"),
    fallback=step("SendReceiptEmailViaSes"),
    park=step("ParkEmailInDeadLetterQueue", "ParkEmailResult", catches=False),
)
SMS = Channel(
    name="sms",
    label="Sms",
    primary=step("SendSms"),
    fallback=step("SendSmsViaSns"),
    park=step("ParkSmsInOutageQueue", "ParkSmsResult", catches=False),
    park_and_wait=Step("ParkSmsInOutageQueueAndWait", "SmsOutageResult", "SmsOutageError"),
)
CHANNELS: tuple[Channel, ...] = (EMAIL, SMS)


def outcome_inputs() -> tuple[str, ...]:
    """The keys RecordOutcome is given besides the notification id and policy: what the status depends on.

    RecordOutcome's ``Parameters`` select each of them by JSONPath, and a JSONPath that selects a missing
    key fails the state (``States.Runtime``), so every execution starts with all of them null
    (:func:`execution_input`) and a step that runs overwrites its own.
    """
    # Not the charge's or the 3-D Secure wait's results, nor a refund's or a cancellation's error (the
    # park that follows says it): they do not change the status.
    keys = [
        CHARGE_PAYMENT.caught,
        WAIT_FOR_PAYMENT_ACTION.caught,
        CANCEL_PAYMENT.result,
        REFUND_PAYMENT.result,
    ]
    keys += [step.result for step in (PARK_UNCERTAIN_CHARGE, PARK_CANCELLATION, PARK_REFUND)]
    for channel in CHANNELS:
        keys += [*channel.primary.keys, *channel.fallback.keys, channel.park.result]
        keys += list(channel.park_and_wait.keys) if channel.park_and_wait else []
    return tuple(keys)


def execution_input(
    notification_id: str, delivery_policy: dict[str, str], request_id: str | None = None
) -> dict[str, object]:
    """The input every execution starts with: ids and the policy only (never contact details), the API
    call's request id (always present, null when unknown, so the parked messages can select it), and a
    null for each key RecordOutcome reads."""
    return {
        NOTIFICATION_ID: notification_id,
        DELIVERY_POLICY: delivery_policy,
        REQUEST_ID: request_id,
        **dict.fromkeys(outcome_inputs()),
    }
