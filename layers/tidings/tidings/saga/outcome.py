"""The one final status of a notification, decided from the state the execution carried to its end.

Pure functions over what each step wrote into the execution state (its result, or the error a Catch
caught), read through the table the state machine is built from (`tidings.saga.result_paths`), so no
state name or key is spelled here; the table's current channel statuses (a parked SMS may already have
been sent by the outage queue's consumer) refine it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tidings import errors
from tidings.notifications.models import NOT_REQUESTED, ChannelStatus, NotificationStatus
from tidings.saga import result_paths as paths
from tidings.saga.result_paths import Channel

_SENT = {ChannelStatus.SENT, ChannelStatus.DELIVERED}
#: A send step's ``skipped`` and a channel's reason when its recipient is on the suppression list.
SUPPRESSED = "suppressed"
#: A channel's reason when the shop cancelled the saga that waited for it.
CANCELLED = "cancelled"


@dataclass(frozen=True)
class ChannelOutcome:
    status: ChannelStatus
    fallback: bool = False
    reason: str | None = None

    @property
    def suppressed(self) -> bool:
        """Skipped because the recipient opted out: nothing failed, nothing was sent."""
        return self.status == ChannelStatus.SKIPPED and self.reason == SUPPRESSED


@dataclass(frozen=True)
class Outcome:
    status: NotificationStatus
    reason: str | None
    channels: dict[str, ChannelOutcome] = field(default_factory=dict)


class OutcomeInput(BaseModel):
    """RecordOutcome's input: the notification, its delivery policy, and what each step wrote.

    The state machine selects exactly ``result_paths.outcome_inputs()`` (null where a step did not run).
    Any other key is dropped, so an execution started on an earlier definition, which handed over its
    whole state, is decided from the same keys.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, dict[str, Any] | None] = Field(init=False)

    notification_id: str
    delivery_policy: dict[str, str]

    @model_validator(mode="before")
    @classmethod
    def _only_what_the_outcome_reads(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = {paths.NOTIFICATION_ID, paths.DELIVERY_POLICY, *paths.outcome_inputs()}
        return {key: value for key, value in data.items() if key in known}

    def written(self, key: str | None) -> dict[str, Any] | None:
        """What a step wrote at ``key`` (its result, or the error a Catch caught); None if it did not."""
        return self.__pydantic_extra__.get(key) if key is not None else None


def _wrote(state: OutcomeInput, key: str | None) -> bool:
    return state.written(key) is not None


def _error_name(state: OutcomeInput, key: str | None) -> str | None:
    error = state.written(key)
    return error.get("Error") if isinstance(error, dict) else None


def _skipped(state: OutcomeInput, key: str | None) -> str | None:
    """Why a send step sent nothing (``not_requested``, ``suppressed``), or None if it sent."""
    result = state.written(key)
    return result.get("skipped") if isinstance(result, dict) else None


def _channel(state: OutcomeInput, channel: Channel, parked: ChannelStatus) -> ChannelOutcome:
    """What happened to one channel: sent (by which provider), parked, refused, failed, skipped (not
    asked for, or its recipient suppressed), or never tried."""
    wait = channel.park_and_wait
    waited = (wait.result, wait.error) if wait else (None, None)
    for key in (channel.primary.result, channel.fallback.result, waited[0]):
        skipped = _skipped(state, key) if key else None
        if skipped:
            return ChannelOutcome(ChannelStatus.SKIPPED, reason=skipped)
    for key in (channel.primary.error, channel.fallback.error, waited[1]):
        if key and _error_name(state, key) == errors.RecipientSuppressed.__name__:
            return ChannelOutcome(ChannelStatus.SKIPPED, reason=SUPPRESSED)
    if waited[1] and _error_name(state, waited[1]) == errors.NotificationCancelled.__name__:
        return ChannelOutcome(ChannelStatus.SKIPPED, reason=CANCELLED)
    if _wrote(state, channel.primary.result):
        return ChannelOutcome(ChannelStatus.SENT)
    if _wrote(state, channel.fallback.result):
        return ChannelOutcome(ChannelStatus.SENT, fallback=True)
    if wait and _wrote(state, wait.result):
        return ChannelOutcome(ChannelStatus.SENT, fallback=True, reason="sent_from_outage_queue")
    if _wrote(state, channel.park.result):
        return ChannelOutcome(parked, reason="providers_unavailable")
    if wait and _wrote(state, wait.error):
        return ChannelOutcome(ChannelStatus.FAILED, reason=_error_name(state, wait.error))
    for send in (channel.fallback, channel.primary):
        name = _error_name(state, send.error)
        if name == errors.InvalidRequest.__name__:
            return ChannelOutcome(ChannelStatus.REJECTED, reason=name)
        if name and send is channel.fallback:
            return ChannelOutcome(ChannelStatus.FAILED, reason=name)
    return ChannelOutcome(ChannelStatus.SKIPPED)


def _parked_as(channel: Channel) -> ChannelStatus:
    """A best-effort e-mail waits dead-lettered for a redrive; an SMS waits parked on the outage queue."""
    return ChannelStatus.DEAD_LETTERED if channel.name == paths.EMAIL.name else ChannelStatus.PARKED


def _channels(state: OutcomeInput) -> dict[str, ChannelOutcome]:
    """Every channel the notification asked for (one it did not ask for counts for nothing)."""
    outcomes = {
        channel.name: _channel(state, channel, _parked_as(channel))
        for channel in paths.CHANNELS
        if state.delivery_policy.get(channel.name) != NOT_REQUESTED
    }
    return {name: outcome for name, outcome in outcomes.items() if outcome.reason != NOT_REQUESTED}


def _refine(outcome: ChannelOutcome, recorded: ChannelStatus | None) -> ChannelOutcome:
    """A channel the table already shows as sent (outage queue beat us to it) counts as sent."""
    if recorded in _SENT and outcome.status not in _SENT:
        return ChannelOutcome(ChannelStatus(recorded), fallback=True, reason="sent_from_outage_queue")
    return outcome


def decide(state: OutcomeInput, recorded_channels: Mapping[str, ChannelStatus] | None = None) -> Outcome:
    """The final status for what the steps wrote (``state``) and the table's channel statuses now."""
    recorded_channels = recorded_channels or {}
    channels = {
        name: _refine(outcome, recorded_channels.get(name)) for name, outcome in _channels(state).items()
    }

    if _wrote(state, paths.PARK_UNCERTAIN_CHARGE.result):
        return Outcome(NotificationStatus.FAILED, paths.CHARGE_OUTCOME_UNKNOWN, channels)
    charge_error = _error_name(state, paths.CHARGE_PAYMENT.error)
    if charge_error == errors.PaymentDeclined.__name__:
        return Outcome(NotificationStatus.PAYMENT_DECLINED, "card_declined", channels)
    if charge_error:
        return Outcome(NotificationStatus.FAILED, f"charge_refused:{charge_error}", channels)
    if _error_name(state, paths.WAIT_FOR_PAYMENT_ACTION.error) == errors.PaymentDeclined.__name__:
        return Outcome(NotificationStatus.PAYMENT_DECLINED, "payment_action_failed", channels)
    if _wrote(state, paths.PARK_CANCELLATION.result):
        return Outcome(NotificationStatus.FAILED, "cancel_failed", channels)
    if _cancelled_by_shop(state) and not _wrote(state, paths.PARK_REFUND.result):
        # The payment was cancelled before it was taken, or refunded (a refund that failed is parked
        # and ends failed below, as any refund that failed).
        refunded = _wrote(state, paths.REFUND_PAYMENT.result)
        reason = "cancelled_refunded" if refunded else "cancelled_before_payment"
        return Outcome(NotificationStatus.CANCELLED, reason, channels)
    if (state.written(paths.CANCEL_PAYMENT.result) or {}).get("outcome") == "cancelled":
        return Outcome(NotificationStatus.PAYMENT_DECLINED, "payment_action_timeout", channels)
    if _wrote(state, paths.PARK_REFUND.result):
        return Outcome(NotificationStatus.FAILED, "refund_failed", _failed_required(state, channels))
    if _wrote(state, paths.REFUND_PAYMENT.result):
        return Outcome(
            NotificationStatus.COMPENSATED, _compensation_reason(state), _failed_required(state, channels)
        )

    # A suppressed channel is not a failure: what could be sent was sent, and the reason says the rest.
    suppressed = ",".join(f"{name}:{SUPPRESSED}" for name, channel in channels.items() if channel.suppressed)
    if all(channel.status in _SENT or channel.suppressed for channel in channels.values()):
        if any(channel.fallback for channel in channels.values()):
            return Outcome(NotificationStatus.DELIVERED_WITH_FALLBACK, suppressed or None, channels)
        return Outcome(NotificationStatus.DELIVERED, suppressed or None, channels)
    missing = ",".join(
        f"{name}:{SUPPRESSED if channel.suppressed else channel.status}"
        for name, channel in channels.items()
        if channel.status not in _SENT
    )
    return Outcome(NotificationStatus.PARTIALLY_DELIVERED, missing, channels)


def _cancelled_by_shop(state: OutcomeInput) -> bool:
    """The shop cancelled the saga while it waited (the notify API failed the wait's task)."""
    cancelled = errors.NotificationCancelled.__name__
    waits = [paths.WAIT_FOR_PAYMENT_ACTION.error]
    waits += [channel.park_and_wait.error for channel in paths.CHANNELS if channel.park_and_wait]
    return any(_error_name(state, key) == cancelled for key in waits)


def _failed_required(state: OutcomeInput, channels: dict[str, ChannelOutcome]) -> dict[str, ChannelOutcome]:
    """Channels that made the saga compensate end as failed (a rejection keeps its own status)."""
    policy = state.delivery_policy
    result = dict(channels)
    for name, channel in channels.items():
        if (
            policy.get(name) == "required"
            and channel.status not in _SENT
            and channel.status != ChannelStatus.REJECTED
            and not channel.suppressed
        ):
            result[name] = ChannelOutcome(
                ChannelStatus.FAILED, reason=channel.reason or "providers_unavailable"
            )
    return result


def _compensation_reason(state: OutcomeInput) -> str:
    policy = state.delivery_policy
    for name, channel in _channels(state).items():
        if policy.get(name) == "required" and channel.suppressed:
            return f"required_{name}_{SUPPRESSED}"
        if policy.get(name) == "required" and channel.status not in _SENT:
            return f"required_{name}_failed"
    return "required_channel_failed"


def upgraded_status(
    current: NotificationStatus, channels: Mapping[str, ChannelStatus]
) -> NotificationStatus | None:
    """After a late delivery (outage queue, redrive): the status a finished notification moves up to."""
    if current != NotificationStatus.PARTIALLY_DELIVERED:
        return None
    # A skipped channel of a partially delivered notification is a suppressed one (a channel not asked
    # for has no record): it does not hold the upgrade back.
    if all(status in _SENT or status == ChannelStatus.SKIPPED for status in channels.values()):
        return NotificationStatus.DELIVERED_WITH_FALLBACK
    return None
