"""The one final status of a notification, decided from the state the execution carried to its end.

Pure functions: the state machine hands RecordOutcome its whole state (each step's ``<Step>Result`` or
``<Step>Error``), and the table's current channel statuses (a parked SMS may already have been sent by
the outage queue's consumer) refine it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tidings.notifications.models import ChannelStatus, NotificationStatus

_SENT = {ChannelStatus.SENT, ChannelStatus.DELIVERED}


@dataclass(frozen=True)
class ChannelOutcome:
    status: ChannelStatus
    fallback: bool = False
    reason: str | None = None


@dataclass(frozen=True)
class Outcome:
    status: NotificationStatus
    reason: str | None
    channels: dict[str, ChannelOutcome] = field(default_factory=dict)


def _error_name(state: dict[str, Any], key: str) -> str | None:
    error = state.get(key)
    return error.get("Error") if isinstance(error, dict) else None


def _email(state: dict[str, Any]) -> ChannelOutcome:
    if "SendReceiptEmailResult" in state:
        return ChannelOutcome(ChannelStatus.SENT)
    if "SendReceiptEmailViaSesResult" in state:
        return ChannelOutcome(ChannelStatus.SENT, fallback=True)
    if "ParkEmailResult" in state:
        return ChannelOutcome(ChannelStatus.DEAD_LETTERED, reason="providers_unavailable")
    for key in ("SendReceiptEmailViaSesError", "SendReceiptEmailError"):
        name = _error_name(state, key)
        if name == "InvalidRequest":
            return ChannelOutcome(ChannelStatus.REJECTED, reason=name)
        if name and key == "SendReceiptEmailViaSesError":
            return ChannelOutcome(ChannelStatus.FAILED, reason=name)
    return ChannelOutcome(ChannelStatus.SKIPPED)


def _sms(state: dict[str, Any]) -> ChannelOutcome:
    if "SendSmsResult" in state:
        return ChannelOutcome(ChannelStatus.SENT)
    if "SendSmsViaSnsResult" in state:
        return ChannelOutcome(ChannelStatus.SENT, fallback=True)
    if "SmsOutageResult" in state:
        return ChannelOutcome(ChannelStatus.SENT, fallback=True, reason="sent_from_outage_queue")
    if "ParkSmsResult" in state:
        return ChannelOutcome(ChannelStatus.PARKED, reason="providers_unavailable")
    if "SmsOutageError" in state:
        return ChannelOutcome(ChannelStatus.FAILED, reason=_error_name(state, "SmsOutageError"))
    for key in ("SendSmsViaSnsError", "SendSmsError"):
        name = _error_name(state, key)
        if name == "InvalidRequest":
            return ChannelOutcome(ChannelStatus.REJECTED, reason=name)
        if name and key == "SendSmsViaSnsError":
            return ChannelOutcome(ChannelStatus.FAILED, reason=name)
    return ChannelOutcome(ChannelStatus.SKIPPED)


def _refine(outcome: ChannelOutcome, recorded: dict[str, Any] | None) -> ChannelOutcome:
    """A channel the table already shows as sent (outage queue beat us to it) counts as sent."""
    if recorded and recorded.get("status") in _SENT and outcome.status not in _SENT:
        return ChannelOutcome(
            ChannelStatus(recorded["status"]), fallback=True, reason="sent_from_outage_queue"
        )
    return outcome


def decide(state: dict[str, Any], recorded_channels: dict[str, Any] | None = None) -> Outcome:
    """The final status for the execution state ``state`` (see the state machine's ResultPaths)."""
    recorded_channels = recorded_channels or {}
    channels = {
        "email": _refine(_email(state), recorded_channels.get("email")),
        "sms": _refine(_sms(state), recorded_channels.get("sms")),
    }

    if "ParkChargeResult" in state:
        return Outcome(NotificationStatus.FAILED, "charge_outcome_unknown", channels)
    charge_error = _error_name(state, "ChargePaymentError")
    if charge_error == "PaymentDeclined":
        return Outcome(NotificationStatus.PAYMENT_DECLINED, "card_declined", channels)
    if charge_error:
        return Outcome(NotificationStatus.FAILED, f"charge_refused:{charge_error}", channels)
    if _error_name(state, "WaitForPaymentActionError") == "PaymentDeclined":
        return Outcome(NotificationStatus.PAYMENT_DECLINED, "payment_action_failed", channels)
    if "ParkCancellationResult" in state:
        return Outcome(NotificationStatus.FAILED, "cancel_failed", channels)
    if state.get("CancelPaymentResult", {}).get("outcome") == "cancelled":
        return Outcome(NotificationStatus.PAYMENT_DECLINED, "payment_action_timeout", channels)
    if "ParkRefundResult" in state:
        return Outcome(NotificationStatus.FAILED, "refund_failed", _failed_required(state, channels))
    if "RefundPaymentResult" in state:
        return Outcome(
            NotificationStatus.COMPENSATED, _compensation_reason(state), _failed_required(state, channels)
        )

    if all(channel.status in _SENT for channel in channels.values()):
        if any(channel.fallback for channel in channels.values()):
            return Outcome(NotificationStatus.DELIVERED_WITH_FALLBACK, None, channels)
        return Outcome(NotificationStatus.DELIVERED, None, channels)
    missing = ",".join(
        f"{name}:{channel.status}" for name, channel in channels.items() if channel.status not in _SENT
    )
    return Outcome(NotificationStatus.PARTIALLY_DELIVERED, missing, channels)


def _failed_required(state: dict[str, Any], channels: dict[str, ChannelOutcome]) -> dict[str, ChannelOutcome]:
    """Channels that made the saga compensate end as failed (a rejection keeps its own status)."""
    policy = state.get("delivery_policy", {})
    result = dict(channels)
    for name, channel in channels.items():
        if (
            policy.get(name) == "required"
            and channel.status not in _SENT
            and channel.status != ChannelStatus.REJECTED
        ):
            result[name] = ChannelOutcome(
                ChannelStatus.FAILED, reason=channel.reason or "providers_unavailable"
            )
    return result


def _compensation_reason(state: dict[str, Any]) -> str:
    email, sms = _email(state), _sms(state)
    policy = state.get("delivery_policy", {})
    if policy.get("email") == "required" and email.status not in _SENT:
        return "required_email_failed"
    if policy.get("sms") == "required" and sms.status not in _SENT:
        return "required_sms_failed"
    return "required_channel_failed"


def upgraded_status(current: str, channels: dict[str, Any]) -> str | None:
    """After a late delivery (outage queue, redrive): the status a finished notification moves up to."""
    if current != NotificationStatus.PARTIALLY_DELIVERED:
        return None
    if all(channel.get("status") in _SENT for channel in channels.values()):
        return NotificationStatus.DELIVERED_WITH_FALLBACK
    return None
