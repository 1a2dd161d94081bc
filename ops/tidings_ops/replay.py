"""``tidings replay <notification_id>``: run a stored notification again and show what changed.

The replay is a new notification of the same client with the same request (order reference
``<original>#replay-<time>``), submitted through the notify API's own domain (``NotificationService``:
stored, then its saga started by the same boto3 calls the API makes), so it runs on whatever is
deployed now: after a fault cleared, or on a new build. No credential or secret is read or stored; the
request content stays in the notification table it came from. The comparison lists the statuses and the
provider calls of both runs (their timelines), with contact details masked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tidings_ops.target import OperatorError

if TYPE_CHECKING:
    from tidings_ops.operations import Operations


def replay_request(item: dict[str, Any], suffix: str) -> dict[str, Any]:
    """The original request, rebuilt from the stored notification, under a new order reference."""
    channels = item.get("channels") or {}
    payment = item.get("payment") or {}
    reference = f"{str(item['order_reference'])[: 128 - len(suffix) - 1]}#{suffix}"
    # Only the channels the original asked for (a notification without an SMS has no "sms").
    content = {"email": item.get("receipt"), "sms": item.get("sms")}
    return {
        "order_reference": reference,
        "customer": item["customer"],
        "payment": {key: payment[key] for key in ("amount", "currency", "payment_method")},
        **({"receipt": content["email"]} if content["email"] else {}),
        **({"sms": content["sms"]} if content["sms"] else {}),
        "delivery_policy": {
            name: (channels.get(name) or {}).get("policy", "best_effort") for name in content if content[name]
        },
    }


def calls(timeline: dict[str, Any]) -> list[str]:
    return [
        f"{e['step']} {e['provider']} {e['outcome']}"
        + (
            f" ({e['error_type']}{' ' + str(e['code']) if e.get('code') else ''})"
            if e.get("error_type")
            else ""
        )
        for e in timeline["entries"]
        if e["kind"] == "provider_call"
    ]


def outcome(notification: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": notification["status"],
        "reason": notification.get("status_reason"),
        "email": notification["channels"].get("email", {}).get("status"),
        "sms": notification["channels"].get("sms", {}).get("status"),
    }


def replay_notification(
    ops: Operations, notification_id: str, *, wait: float, on_change: Callable[[str], None] | None = None
) -> dict[str, Any]:
    from tidings.api.service import NotificationService
    from tidings.notifications import NotificationRequest
    from tidings.notifications.store import NotificationNotFound
    from tidings_ops.operations import FINAL

    try:
        stored = ops.store.get(notification_id)
    except NotificationNotFound:
        raise OperatorError(f"No notification {notification_id} on {ops.target.where}.") from None
    suffix = "replay-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    request = NotificationRequest.model_validate(
        replay_request(stored.model_dump(mode="json", exclude_none=True), suffix)
    )
    service = NotificationService(
        store=ops.store,
        stepfunctions=lambda: ops.target.client("stepfunctions"),
        sqs=lambda: ops.target.client("sqs"),
        state_machine_arn=ops.resources.state_machine_arn,
    )
    with ops._call("Step Functions StartExecution"):
        accepted = service.submit(stored.client_id, suffix + notification_id, request)
    replay_id = accepted.notification_id
    if on_change:
        on_change(f"replaying as {replay_id}")
    deadline = time.monotonic() + wait
    while True:
        current = ops.notification(replay_id)
        if current["status"] in FINAL or time.monotonic() > deadline:
            break
        time.sleep(1)
    before, after = ops.notification(notification_id), current
    before_calls, after_calls = calls(ops.timeline(notification_id)), calls(ops.timeline(replay_id))
    was, now = outcome(before), outcome(after)
    return {
        "original": notification_id,
        "replay": replay_id,
        "finished": after["status"] in FINAL,
        "outcome": {"before": was, "after": now},
        "changed": {key: [was[key], now[key]] for key in was if was[key] != now[key]},
        "provider_calls": {"before": before_calls, "after": after_calls},
    }
