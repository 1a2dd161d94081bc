"""One notification's timeline: the table's records and the execution history, joined in causal order.

Sources, each entry naming its own (``source``) and the lane it belongs to (``actor``):

* ``execution``  the Step Functions history: every state entered and left, a task's failure with its
                 error name, a retry (the same task scheduled again), a catch (the state left on an
                 error), the end of the execution;
* ``provider``   each saga step's provider call as the step recorded it: method and path (the shape of
                 the provider's API), outcome, HTTP status and error code when it failed, the provider's
                 id for the request or object, its latency when recorded;
* ``webhook``    each signed webhook the receiver accepted;
* ``queue``      queue hops: a message parked on a queue by the state machine, a redelivery scheduled,
                 a message dead-lettered after its tries;
* ``saga``       the saga's own records (the outcome it decided);
* ``outcome``    the last entry: the notification's status now, and the queue each waiting channel is in.

Order: by time, then one causal rule on top, because clocks and queues deliver out of order: a
webhook about an object (a PaymentIntent, a message) comes after the provider call that created it,
whatever its timestamp says. ``order`` is then 1, 2, 3, ... Everything shown passes ``redact``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tidings.observability import redact

if TYPE_CHECKING:
    from tidings.notifications.models import Notification, TimelineEvent

#: The provider API each step calls (the shape of the request; the ids in a path are not shown).
PROVIDER_CALLS: dict[tuple[str, str], tuple[str, str]] = {
    ("ChargePayment", "stripe"): ("POST", "/v1/payment_intents"),
    ("CancelPayment", "stripe"): ("POST", "/v1/payment_intents/{id}/cancel"),
    ("RefundPayment", "stripe"): ("POST", "/v1/refunds"),
    ("ReconcilePayment", "stripe"): ("GET", "/v1/payment_intents/{id}"),
    ("*", "sendgrid"): ("POST", "/v3/mail/send"),
    ("*", "twilio"): ("POST", "/2010-04-01/Accounts/{sid}/Messages.json"),
    ("*", "ses"): ("POST", "/v2/email/outbound-emails"),  # SESv2 SendEmail
    ("*", "sns"): ("POST", "/ (Publish)"),
}
#: Lanes of the picture, by provider.
ACTORS = {
    "stripe": "stripe",
    "sendgrid": "email",
    "ses": "email",
    "twilio": "sms",
    "sns": "sms",
}
#: The queue a channel in this status waits in.
WAITING_QUEUES = {
    ("email", "dead_lettered"): "EmailDeadLetterQueue",
    ("email", "parked"): "EmailDeadLetterQueue",
    ("sms", "parked"): "SmsOutageQueue",
    ("sms", "dead_lettered"): "SmsDeadLetterQueue",
}
KNOWN_QUEUES = (
    "EmailDeadLetterQueue",
    "EmailRetryQueue",
    "SmsDeadLetterQueue",
    "SmsOutageQueue",
    "CompensationDeadLetterQueue",
    "CompensationRetryQueue",
    "BulkDeadLetterQueue",
    "BulkQueue",
    "WebhookDeadLetterQueue",
    "WebhookQueue",
)
#: Among entries with the same timestamp: the execution's own order first, then what a step recorded.
_RANK = {"execution": 0, "provider": 1, "queue": 2, "saga": 3, "webhook": 4, "outcome": 9}
_ID_FIELDS = ("provider_message_id", "payment_intent_id", "refund_id", "request_id")


def iso(value: Any) -> str:
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value)


def queue_name(queue_url: str) -> str:
    """``.../123/tidings-dev-EmailDeadLetterQueue-1A2B`` -> ``EmailDeadLetterQueue``."""
    name = queue_url.rstrip("/").rsplit("/", 1)[-1]
    for known in sorted(KNOWN_QUEUES, key=len, reverse=True):
        if known in name:
            return known
    return name


def build_timeline(
    notification: Notification, events: Sequence[TimelineEvent], history: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The entries, in order: ``events`` are the table's records of the notification, ``history`` its
    execution's events as Step Functions returns them."""
    entries = [*_from_history(history), *(_from_record(event) for event in events)]
    for seq, entry in enumerate(entries):
        entry["_seq"] = seq
    entries.sort(key=lambda entry: (entry["at"], _RANK[entry["source"]], entry["_seq"]))
    entries = _causal(entries)
    entries.append(_final(notification, entries[-1]["at"] if entries else notification.created_at))
    for order, entry in enumerate(entries, start=1):
        entry.pop("_seq", None)
        entry["order"] = order
    return [redact(entry) for entry in entries]


# --- the table's records ---------------------------------------------------------------------------
def _from_record(event: TimelineEvent) -> dict[str, Any]:
    step, outcome, provider = event.step, event.outcome, event.provider
    details = dict(event.details)
    base = {"at": iso(event.at), "step": step, "kind": outcome, "attempt": event.attempt}
    if step.startswith("Webhook"):
        return base | {
            "source": "webhook",
            "actor": "webhooks",
            "provider": provider,
            "kind": "webhook",
            "event_type": outcome,
            "object_id": details.get("provider_object_id"),
            "details": details,
        }
    if provider:
        method, path = PROVIDER_CALLS.get((step, provider)) or PROVIDER_CALLS.get(("*", provider), ("", ""))
        status = details.get("status")
        return base | {
            "source": "provider",
            "actor": ACTORS.get(provider, provider),
            "provider": provider,
            "kind": "provider_call",
            "outcome": outcome,
            "method": method,
            "path": path,
            "http_status": status if isinstance(status, int) else None,
            "latency_ms": details.get("latency_ms"),
            "provider_request_id": next((details[key] for key in _ID_FIELDS if details.get(key)), None),
            "error_type": details.get("error_type"),
            "code": details.get("code") or details.get("decline_code"),
            "details": details,
        }
    if step == "RetryDelivery":
        queue = None
        if outcome == "dead_lettered":
            queue = WAITING_QUEUES.get((details.get("channel", ""), "dead_lettered"))
        return base | {"source": "queue", "actor": "queues", "queue": queue, "details": details}
    return base | {"source": "saga", "actor": "saga", "details": details}


# --- the execution history -------------------------------------------------------------------------
def _from_history(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    state: str | None = None
    failure: dict[str, str] | None = None  # the current state's last task failure, not yet retried
    tries: dict[str, int] = {}
    for event in sorted(history, key=lambda e: e.get("id", 0)):
        kind, at = event.get("type", ""), iso(event.get("timestamp", ""))

        def add(entry_kind: str, at: str = at, **fields: Any) -> None:
            entries.append({"at": at, "source": "execution", "actor": "saga", "kind": entry_kind, **fields})

        if kind == "ExecutionStarted":
            add("execution_started")
        elif kind.endswith("StateEntered"):
            state = event.get("stateEnteredEventDetails", {}).get("name")
            failure, tries[state or ""] = None, 0
            add("state_entered", state=state, state_type=kind.removesuffix("StateEntered"))
        elif kind.endswith("StateExited"):
            name = event.get("stateExitedEventDetails", {}).get("name")
            if failure:
                add("caught", state=name, error=failure["error"])
            add("state_exited", state=name)
            failure = None
        elif kind == "TaskScheduled":
            details = event.get("taskScheduledEventDetails", {})
            tries[state or ""] = tries.get(state or "", 0) + 1
            if failure:
                add("retry", state=state, error=failure["error"], attempt=tries[state or ""])
                failure = None
            if details.get("resourceType") == "sqs":
                try:
                    parameters = json.loads(details.get("parameters") or "{}")
                except ValueError:
                    parameters = {}
                queue = queue_name(str(parameters.get("QueueUrl", "")))
                entries.append(
                    {
                        "at": at,
                        "source": "queue",
                        "actor": "queues",
                        "kind": "parked",
                        "state": state,
                        "queue": queue,
                    }
                )
        elif kind in ("TaskFailed", "TaskTimedOut", "LambdaFunctionFailed", "LambdaFunctionTimedOut"):
            detail: dict[str, Any] = next(
                (value for key, value in event.items() if key.endswith("EventDetails")), {}
            )
            error = detail.get("error") or ("States.Timeout" if "TimedOut" in kind else "States.TaskFailed")
            failure = {"error": error}
            add("task_failed", state=state, error=error)
        elif kind == "ExecutionSucceeded":
            add("execution_succeeded")
        elif kind in ("ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"):
            detail = next((value for key, value in event.items() if key.endswith("EventDetails")), {})
            add(_snake(kind), error=detail.get("error"))
    return entries


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


# --- causal order ----------------------------------------------------------------------------------
def _causal(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Move each webhook that precedes the provider call it reports to just after that call."""
    calls = [entry for entry in entries if entry["source"] == "provider" and entry.get("provider_request_id")]

    def cause(webhook: dict[str, Any]) -> dict[str, Any] | None:
        object_id = str(webhook.get("object_id") or "")
        if not object_id:
            return None
        for call in calls:
            request_id = str(call["provider_request_id"])
            # SendGrid's sg_message_id is the X-Message-Id of the send with a suffix.
            if object_id == request_id or object_id.startswith(request_id + "."):
                return call
        return None

    position = {id(entry): n for n, entry in enumerate(entries)}
    moved: dict[int, list[dict[str, Any]]] = {}
    kept: list[dict[str, Any]] = []
    for entry in entries:
        origin = cause(entry) if entry["source"] == "webhook" else None
        if origin is not None and position[id(origin)] > position[id(entry)]:
            moved.setdefault(id(origin), []).append(entry)
            entry["reordered"] = "after the provider call it reports"
        else:
            kept.append(entry)
    ordered: list[dict[str, Any]] = []
    for entry in kept:
        ordered.append(entry)
        ordered.extend(moved.get(id(entry), []))
    return ordered


# --- now -------------------------------------------------------------------------------------------
def _final(notification: Notification, at: str) -> dict[str, Any]:
    waiting = [
        {"channel": name, "status": status, "queue": WAITING_QUEUES[(name, status)]}
        for name, status in ((name, channel.status.value) for name, channel in notification.channels.items())
        if (name, status) in WAITING_QUEUES
    ]
    channels = {
        name: {"status": channel.status.value, "provider": channel.provider, "reason": channel.reason}
        for name, channel in notification.channels.items()
    }
    return {
        "at": iso(notification.finished_at or notification.updated_at or at or ""),
        "source": "outcome",
        "actor": "saga",
        "kind": "final_status" if notification.finished_at else "current_status",
        "status": notification.status.value,
        "reason": notification.status_reason,
        "channels": {
            name: {key: value for key, value in channel.items() if value}
            for name, channel in channels.items()
        },
        "waiting_in": waiting,
    }
