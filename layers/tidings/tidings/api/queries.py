"""Read side of the notify API: find a caller's notifications, and one notification's joined timeline.

``GET /notifications`` is a DynamoDB Query on one of three sparse indexes of the notifications table
(``template.yaml``), never a Scan:

* ``ByClient``          client_id / created_at      a client's notifications, newest first
* ``ByOrderReference``  order_reference / created_at one order's notifications (then the caller's only)
* ``ByBulk``            bulk_id / created_at         one bulk request's items (then the caller's only)

Each index projects the listing's fields only (no contact details, no content). Status and channel
statuses are filter expressions on the chosen key range; ``created_since`` / ``created_until`` narrow the
key range itself. The cursor is the last returned item's index key, base64url JSON, and only ever
continues the query it came from (a cursor for another client's key is refused, not followed).

``GET /notifications/{id}/timeline`` joins what the table recorded (each saga step's provider call,
webhooks, redeliveries) with the Step Functions execution history (states entered and left, retries,
catches with the error name, the queues a message was parked in), in causal order (``timeline``).
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tidings.notifications.models import ChannelStatus, NotificationStatus, OrderReference
from tidings.notifications.store import NotificationNotFound, NotificationStore, plain
from tidings.observability import redact

if TYPE_CHECKING:
    from boto3.dynamodb.conditions import ConditionBase

INDEX_BY_CLIENT = "ByClient"
INDEX_BY_ORDER_REFERENCE = "ByOrderReference"
INDEX_BY_BULK = "ByBulk"
#: Each index's partition key attribute (the sort key is ``created_at`` on all three).
INDEX_KEYS = {
    INDEX_BY_CLIENT: "client_id",
    INDEX_BY_ORDER_REFERENCE: "order_reference",
    INDEX_BY_BULK: "bulk_id",
}
#: What the indexes project besides their keys (the listing's fields; never contact details).
LISTED_FIELDS = (
    "notification_id",
    "client_id",
    "order_reference",
    "bulk_id",
    "status",
    "status_reason",
    "created_at",
    "updated_at",
    "finished_at",
    "channels",
)
#: Channel attributes a listing shows.
_CHANNEL_FIELDS = ("policy", "status", "provider", "fallback", "reason", "delivery_status")


class InvalidQuery(ValueError):
    """A query the API refuses with 400 (a cursor that is not one of ours, an impossible range)."""

    def __init__(self, message: str, loc: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc


def _iso(value: datetime) -> str:
    """The table's own timestamp format (``2026-01-02T03:04:05.678Z``), so ranges compare as strings."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class NotificationFilters(BaseModel):
    """The query string of ``GET /notifications``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: NotificationStatus | None = None
    email_status: ChannelStatus | None = None
    sms_status: ChannelStatus | None = None
    order_reference: OrderReference | None = None
    bulk_id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")
    created_since: datetime | None = None
    created_until: datetime | None = None
    limit: int = Field(25, ge=1, le=100)
    cursor: str | None = Field(None, min_length=1, max_length=2048)

    @field_validator("created_since", "created_until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


# (The read side's answers; as comments, not docstrings: those would change the OpenAPI document.)
# A channel as a listing shows it: only the fields it has (the answer is dumped ``exclude_unset``).
class ListedChannel(BaseModel):
    policy: str | None = None
    status: str | None = None
    provider: str | None = None
    fallback: bool | None = None
    reason: str | None = None
    delivery_status: str | None = None


# One listed notification: ids, statuses and times (the index holds nothing else).
class ListedNotification(BaseModel):
    notification_id: str
    order_reference: str | None = None
    bulk_id: str | None = None
    status: str | None = None
    status_reason: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    finished_at: str | None = None
    channels: dict[str, ListedChannel]
    status_url: str


# ``GET /notifications``: one page of the caller's notifications, newest first.
class NotificationPage(BaseModel):
    items: list[ListedNotification]
    count: int
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; null at the end")


# One entry; what else it carries depends on its ``source`` and ``kind`` (``tidings.api.timeline``).
class TimelineEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    order: int = Field(description="1, 2, 3, ... in causal order")
    at: str
    source: str = Field(description="execution, provider, webhook, queue, saga or outcome")
    actor: str = Field(description="The lane: saga, stripe, email, sms, webhooks, queues")
    kind: str


# ``GET /notifications/{id}/timeline``: the notification's status and its joined timeline.
class Timeline(BaseModel):
    notification_id: str
    order_reference: str
    status: str
    execution_arn: str | None = None
    entries: list[TimelineEntry]


@dataclass
class NotificationQueries:
    """Queries over the notifications table's indexes and the saga's execution history."""

    store: NotificationStore
    table: Any
    stepfunctions: Callable[[], Any]

    # --- GET /notifications --------------------------------------------------------------------
    def list(self, client_id: str | None, filters: NotificationFilters) -> NotificationPage:
        """The caller's notifications (``client_id``; None only for operators, who must then name an
        order reference or a bulk id, since a listing without either is one client's partition)."""
        from boto3.dynamodb.conditions import Attr, Key

        if filters.created_since and filters.created_until and filters.created_since > filters.created_until:
            raise InvalidQuery("created_since is after created_until", ["query", "created_since"])
        if filters.order_reference:
            index, hash_value = INDEX_BY_ORDER_REFERENCE, filters.order_reference
        elif filters.bulk_id:
            index, hash_value = INDEX_BY_BULK, filters.bulk_id
        elif client_id:
            index, hash_value = INDEX_BY_CLIENT, client_id
        else:
            raise InvalidQuery("name a client, an order reference or a bulk id", ["query", "client_id"])
        key: ConditionBase = Key(INDEX_KEYS[index]).eq(hash_value)
        since = _iso(filters.created_since) if filters.created_since else None
        until = _iso(filters.created_until) if filters.created_until else None
        if since and until:
            key &= Key("created_at").between(since, until)
        elif since:
            key &= Key("created_at").gte(since)
        elif until:
            key &= Key("created_at").lte(until)

        # Bulk META items share ByClient and ByBulk: only notifications have an order reference.
        condition = Attr("order_reference").exists() & Attr("notification_id").exists()
        if index != INDEX_BY_CLIENT and client_id:
            condition &= Attr("client_id").eq(client_id)
        if filters.status:
            condition &= Attr("status").eq(filters.status.value)
        if filters.email_status:
            condition &= Attr("channels.email.status").eq(filters.email_status.value)
        if filters.sms_status:
            condition &= Attr("channels.sms.status").eq(filters.sms_status.value)

        query: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": key,
            "FilterExpression": condition,
            "ScanIndexForward": False,  # newest first
        }
        if filters.cursor:
            query["ExclusiveStartKey"] = decode_cursor(filters.cursor, index, hash_value)

        items: list[dict[str, Any]] = []
        more = False
        while True:
            # Read a little past the limit: a filter may drop some of what a page reads.
            page = self.table.query(**query, Limit=max(filters.limit * 2, 20))
            for raw in page["Items"]:
                if len(items) == filters.limit:
                    more = True
                    break
                items.append(raw)
            if more or "LastEvaluatedKey" not in page:
                break
            if len(items) == filters.limit:
                # Full at a page boundary: there may be more, and the cursor below continues from here.
                more = True
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        next_cursor = encode_cursor(index, items[-1]) if more and items else None
        return NotificationPage(
            items=[summary(plain(item)) for item in items], count=len(items), next_cursor=next_cursor
        )

    # --- GET /notifications/{id}/timeline ------------------------------------------------------
    def timeline(self, client_id: str | None, notification_id: str) -> Timeline:
        """The joined timeline of the caller's notification (``client_id`` None: an operator's view)."""
        from tidings.api.timeline import build_timeline

        notification = self.store.get(notification_id)
        if client_id is not None and notification.client_id != client_id:
            raise NotificationNotFound(notification_id)
        history = self.execution_history(notification.execution_arn)
        entries = build_timeline(notification, self.store.timeline(notification_id), history)
        return Timeline(
            notification_id=notification_id,
            order_reference=notification.order_reference,
            status=notification.status.value,
            execution_arn=notification.execution_arn,
            entries=[TimelineEntry.model_validate(entry) for entry in entries],
        )

    # (builtins.list: inside this class, `list` is the method above)
    def execution_history(self, execution_arn: str | None) -> builtins.list[dict[str, Any]]:
        """Every event of the notification's execution (none if it has not started or is gone)."""
        if not execution_arn:
            return []
        client = self.stepfunctions()
        events: list[dict[str, Any]] = []
        request: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        try:
            while True:
                page = client.get_execution_history(**request)
                events.extend(page.get("events", []))
                if not page.get("nextToken"):
                    break
                request["nextToken"] = page["nextToken"]
        except client.exceptions.ExecutionDoesNotExist:
            return []
        return events


def summary(item: dict[str, Any]) -> ListedNotification:
    """One listed notification from its (projected) item: ids, statuses and times."""
    channels = {
        name: {key: channel.get(key) for key in _CHANNEL_FIELDS if channel.get(key) is not None}
        for name, channel in (item.get("channels") or {}).items()
    }
    return ListedNotification(
        notification_id=item["notification_id"],
        order_reference=item.get("order_reference"),
        bulk_id=item.get("bulk_id"),
        status=item.get("status"),
        status_reason=item.get("status_reason"),
        created_at=item.get("created_at"),
        updated_at=item.get("updated_at"),
        finished_at=item.get("finished_at"),
        channels={name: ListedChannel(**fields) for name, fields in redact(channels).items()},
        status_url=f"/notifications/{item['notification_id']}",
    )


def encode_cursor(index: str, item: dict[str, Any]) -> str:
    key = {name: item[name] for name in ("pk", "sk", INDEX_KEYS[index], "created_at")}
    raw = json.dumps({"i": index, "k": key}, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, index: str, hash_value: str) -> dict[str, Any]:
    """The ExclusiveStartKey in ``cursor``, if it continues this very query; else InvalidQuery."""
    refused = InvalidQuery("cursor does not continue this query", ["query", "cursor"])
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise refused from None
    if not isinstance(decoded, dict) or decoded.get("i") != index or not isinstance(decoded.get("k"), dict):
        raise refused
    key: dict[str, Any] = decoded["k"]
    names = {"pk", "sk", INDEX_KEYS[index], "created_at"}
    if set(key) != names or not all(isinstance(value, str) for value in key.values()):
        raise refused
    if key[INDEX_KEYS[index]] != hash_value or not key["pk"].startswith("NOTIFICATION#"):
        raise refused
    return key


def queries_for(table_name: str) -> NotificationQueries:
    """Queries on ``table_name`` (boto3 resources and clients built here, on first use of the API)."""
    from functools import lru_cache

    import boto3

    table = boto3.resource("dynamodb").Table(table_name)
    return NotificationQueries(
        store=NotificationStore(table),
        table=table,
        stepfunctions=lru_cache(maxsize=1)(lambda: boto3.client("stepfunctions")),
    )
