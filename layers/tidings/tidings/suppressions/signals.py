"""Opt-out signals in the providers' verified webhooks: who asked not to be sent to (or to be again).

Read by the webhook receiver from the verified body, which is the only place the address is: the
normalised events on the webhook queue (and its DLQ) never carry one, so the receiver applies these
itself (:func:`apply_signals`) before it acknowledges.

* Twilio inbound messages: ``OptOutType`` ``STOP`` / ``START`` (Advanced Opt-Out), or, where Twilio does
  not add it, the body being one of Twilio's default opt-out or opt-in keywords.
* SendGrid events: ``unsubscribe``, ``group_unsubscribe``, ``spamreport``, and ``bounce`` of type
  ``bounce`` (hard; a ``blocked`` one is temporary and suppresses nothing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from tidings.suppressions.models import SuppressionChannel, SuppressionReason, SuppressionSource, normalise

#: Twilio's default opt-out and opt-in keywords (Advanced Opt-Out's defaults; matched on the whole body).
TWILIO_OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
TWILIO_OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})

SENDGRID_REASONS = {
    "unsubscribe": SuppressionReason.UNSUBSCRIBE,
    "group_unsubscribe": SuppressionReason.GROUP_UNSUBSCRIBE,
    "spamreport": SuppressionReason.SPAM_REPORT,
    "bounce": SuppressionReason.HARD_BOUNCE,
}


@dataclass(frozen=True)
class OptOutSignal:
    channel: SuppressionChannel
    address: str
    action: Literal["suppress", "lift"]
    reason: SuppressionReason
    source: SuppressionSource


def _first(params: Mapping[str, Sequence[str]], name: str) -> str:
    values = params.get(name) or []
    return values[0] if values else ""


def twilio_signals(params: Mapping[str, Sequence[str]]) -> list[OptOutSignal]:
    """An inbound message's opt-out or opt-in; nothing for a status callback or any other message."""
    if _first(params, "SmsStatus") != "received" and not _first(params, "OptOutType"):
        return []
    kind = _first(params, "OptOutType").upper()
    if not kind:
        word = _first(params, "Body").strip().upper()
        kind = (
            "STOP" if word in TWILIO_OPT_OUT_KEYWORDS else "START" if word in TWILIO_OPT_IN_KEYWORDS else ""
        )
    if kind not in ("STOP", "START"):
        return []
    try:
        address = normalise("sms", _first(params, "From"))
    except ValueError:
        return []  # a short code or alphanumeric sender: no number to suppress
    action: Literal["suppress", "lift"] = "suppress" if kind == "STOP" else "lift"
    return [OptOutSignal("sms", address, action, SuppressionReason.OPT_OUT, "twilio")]


def sendgrid_signals(payload: bytes) -> list[OptOutSignal]:
    """Each unsubscribe, spam report and hard bounce of SendGrid's event array."""
    try:
        body: Any = json.loads(payload)
    except ValueError:
        return []
    signals = []
    for item in body if isinstance(body, list) else []:
        if not isinstance(item, Mapping):
            continue
        reason = SENDGRID_REASONS.get(str(item.get("event", "")))
        if reason is None or (reason is SuppressionReason.HARD_BOUNCE and item.get("type") != "bounce"):
            continue
        try:
            address = normalise("email", str(item.get("email") or ""))
        except ValueError:
            continue
        signals.append(OptOutSignal("email", address, "suppress", reason, "sendgrid"))
    return signals


class SignalSink(Protocol):
    """What applies the signals (the suppression service)."""

    def suppress(
        self,
        channel: SuppressionChannel,
        address: str,
        reason: SuppressionReason,
        source: SuppressionSource,
    ) -> bool: ...

    def lift(self, channel: SuppressionChannel, address: str, source: SuppressionSource) -> bool: ...


def apply_signals(signals: Sequence[OptOutSignal], sink: SignalSink) -> int:
    """Apply each signal; how many changed the list (raises on a table failure: the provider retries)."""
    changed = 0
    for signal in signals:
        if signal.action == "suppress":
            changed += bool(sink.suppress(signal.channel, signal.address, signal.reason, signal.source))
        else:
            changed += bool(sink.lift(signal.channel, signal.address, signal.source))
    return changed
