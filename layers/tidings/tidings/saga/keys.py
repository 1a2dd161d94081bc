"""Ids and idempotency keys, all derived from the notification id so any retry reuses them."""

from __future__ import annotations

import uuid

# Fixed namespace: the same (client, key) always names the same notification, on every container.
_NOTIFICATION_NAMESPACE = uuid.UUID("6f1d6c7e-2b0a-4f7e-9a55-7d2b8f0c1e42")


def notification_id_for(client_id: str, idempotency_key: str) -> str:
    """One notification per client and idempotency key: a replayed request can never start a second saga."""
    return str(uuid.uuid5(_NOTIFICATION_NAMESPACE, f"{client_id}\n{idempotency_key}"))


def charge_key(notification_id: str) -> str:
    return f"tidings-{notification_id}-charge"


def cancel_key(notification_id: str) -> str:
    return f"tidings-{notification_id}-cancel"


def refund_key(notification_id: str) -> str:
    return f"tidings-{notification_id}-refund"


def send_key(notification_id: str, channel: str) -> str:
    """The same key for the primary provider and its fallback: a message accepted once is never resent."""
    return f"tidings-{notification_id}-{channel}"
