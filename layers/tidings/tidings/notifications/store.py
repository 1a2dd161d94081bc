"""The notification table: one META item per notification, EVENT items for its timeline.

Key design (table ``NOTIFICATIONS_TABLE``, keys ``pk``/``sk``):

* ``NOTIFICATION#<id>`` / ``META``: request content, contact details, status, channel outcomes,
  payment ids, the Step Functions execution ARN and, while the saga waits for 3-D Secure, the task token.
* ``NOTIFICATION#<id>`` / ``EVENT#<iso time>#<n>``: the timeline, read back in order with one Query.
* ``PAYMENT_INTENT#<pi id>`` / ``META``: which notification a PaymentIntent belongs to (webhooks).
* ``BULK#<bulk id>`` / ``META`` and ``ITEM#<index>``: a bulk request and its per-item results.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from tidings.notifications.models import FINAL_STATUSES, TimelineEvent, statuses_replaceable_by


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def notification_key(notification_id: str) -> dict[str, str]:
    return {"pk": f"NOTIFICATION#{notification_id}", "sk": "META"}


#: Bulk per-item results per table item (each well under DynamoDB's 400 KB item limit).
BULK_PAGE_SIZE = 500


class NotificationNotFound(LookupError):
    """No notification with that id (or not visible to the caller)."""


class NotificationStore:
    """Reads and writes notifications. Takes a boto3 DynamoDB ``Table`` so tests can hand in moto's."""

    def __init__(self, table: Any) -> None:
        self._table = table

    # --- notifications --------------------------------------------------------------------------
    def create(self, item: dict[str, Any]) -> bool:
        """Store a new notification; False when one with this id exists already (a replayed request)."""
        from botocore.exceptions import ClientError

        try:
            self._table.put_item(
                Item={**notification_key(item["notification_id"]), **item},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def create_many(self, items: list[dict[str, Any]]) -> None:
        """Store many new notifications (bulk). Existing ids are overwritten only if never started."""
        with self._table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for item in items:
                batch.put_item(Item={**notification_key(item["notification_id"]), **item})

    def get(self, notification_id: str) -> dict[str, Any]:
        found = self._table.get_item(Key=notification_key(notification_id), ConsistentRead=True).get("Item")
        if not found:
            raise NotificationNotFound(f"no notification {notification_id}")
        return _plain(found)

    def get_many(self, notification_ids: list[str]) -> dict[str, dict[str, Any]]:
        """META items by id (missing ids are left out); 100 keys per BatchGetItem call."""
        resource = self._table.meta.client
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(notification_ids), 100):
            keys = [notification_key(nid) for nid in notification_ids[start : start + 100]]
            request = {self._table.name: {"Keys": keys}}
            while request:
                answer = resource.batch_get_item(RequestItems=request)
                for raw in answer["Responses"].get(self._table.name, []):
                    item = _plain(raw)  # the resource's client already deserialises
                    found[item["notification_id"]] = item
                request = answer.get("UnprocessedKeys") or {}
        return found

    def timeline(self, notification_id: str) -> list[dict[str, Any]]:
        from boto3.dynamodb.conditions import Key

        query = {
            "KeyConditionExpression": Key("pk").eq(f"NOTIFICATION#{notification_id}")
            & Key("sk").begins_with("EVENT#"),
            "ConsistentRead": True,
        }
        events: list[dict[str, Any]] = []
        while True:
            page = self._table.query(**query)
            events.extend(_plain(item) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        for event in events:
            event.pop("pk", None)
            event.pop("sk", None)
        return events

    def add_event(self, notification_id: str, event: TimelineEvent) -> None:
        body = event.model_dump(exclude_none=True)
        self._table.put_item(
            Item={
                "pk": f"NOTIFICATION#{notification_id}",
                "sk": f"EVENT#{event.at}#{uuid.uuid4().hex[:8]}",
                **_dynamo_safe(body),
            }
        )

    def update(self, notification_id: str, **fields: Any) -> None:
        """Set top-level attributes (and ``updated_at``)."""
        self._set(notification_id, {**fields, "updated_at": now_iso()})

    def update_channel(
        self,
        notification_id: str,
        channel: str,
        status: str | None = None,
        *,
        with_status: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> bool:
        """Set ``channels.<channel>``'s status forward only, and its other attributes.

        The one writer of a channel's status, for the saga's steps, RecordOutcome, later tries and
        webhooks alike. ``status`` is applied with a DynamoDB condition (the current status is one
        ``status`` may replace, ``CHANNEL_STATUS_RANK``), so a write that arrives late (the send step's
        ``sent`` after the delivery webhook, RecordOutcome's ``sent`` after an early bounce) cannot move
        it back, however the writers interleave. ``with_status`` (a reason, the provider's own delivery
        status) belongs to that status and is written only with it; ``fields`` (provider, message id)
        describe the message and are written either way.

        Returns False when the status was kept (the other fields are still written).
        """
        from boto3.dynamodb.conditions import Attr
        from botocore.exceptions import ClientError

        at = now_iso()
        prefix = f"channels.{channel}"
        values = {f"{prefix}.{name}": value for name, value in fields.items()}
        values |= {"updated_at": at, f"{prefix}.updated_at": at}
        if status is None:
            self._set(notification_id, values)
            return True
        forward = {f"{prefix}.status": str(status)}
        forward |= {f"{prefix}.{name}": value for name, value in (with_status or {}).items()}
        current = Attr(f"{prefix}.status")
        condition = (
            Attr("pk").exists()
            & Attr(prefix).exists()
            & (current.not_exists() | current.is_in(statuses_replaceable_by(status)))
        )
        try:
            self._set(notification_id, values | forward, condition=condition)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            # Kept: the status is already as far or further. The message's own attributes still count;
            # either way a notification that does not exist raises NotificationNotFound.
            if fields:
                self._set(notification_id, values)
            else:
                self.get(notification_id)
            return False
        return True

    def set_status(self, notification_id: str, status: str, **fields: Any) -> None:
        self.update(notification_id, status=status, **fields)

    def finish(self, notification_id: str, status: str, reason: str | None) -> None:
        """Record the saga's final status; the waiting token (if any) is no longer valid."""
        from boto3.dynamodb.conditions import Attr

        values = {
            "status": status,
            "status_reason": reason,
            "finished_at": now_iso(),
            "updated_at": now_iso(),
        }
        names, assigns, attr_values = _assignments(values)
        try:
            self._table.update_item(
                Key=notification_key(notification_id),
                UpdateExpression=f"SET {', '.join(assigns)} REMOVE payment_task_token",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=attr_values,
                ConditionExpression=Attr("pk").exists(),
            )
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            raise NotificationNotFound(f"no notification {notification_id}") from None

    # --- payment <-> notification (3-D Secure webhooks) ---------------------------------------------
    def link_payment_intent(self, notification_id: str, payment_intent_id: str) -> None:
        self._table.put_item(
            Item={
                "pk": f"PAYMENT_INTENT#{payment_intent_id}",
                "sk": "META",
                "notification_id": notification_id,
                "payment_intent_id": payment_intent_id,
            }
        )

    def notification_for_payment_intent(self, payment_intent_id: str) -> str | None:
        item = self._table.get_item(
            Key={"pk": f"PAYMENT_INTENT#{payment_intent_id}", "sk": "META"}, ConsistentRead=True
        ).get("Item")
        return item["notification_id"] if item else None

    def store_task_token(self, notification_id: str, task_token: str) -> None:
        self.update(notification_id, payment_task_token=task_token, status="awaiting_payment_action")

    def clear_task_token(self, notification_id: str) -> None:
        self._table.update_item(
            Key=notification_key(notification_id), UpdateExpression="REMOVE payment_task_token"
        )

    # --- bulk -----------------------------------------------------------------------------------
    def create_bulk(self, bulk_id: str, client_id: str, items: list[dict[str, Any]]) -> None:
        """The bulk request and its per-item results (accepted or rejected, with the reason).

        Results are kept in pages of ``BULK_PAGE_SIZE`` entries, so a 1,000-item request costs a couple
        of writes rather than one per item (the API answers within API Gateway's 30 s).
        """
        pages = [items[start : start + BULK_PAGE_SIZE] for start in range(0, len(items), BULK_PAGE_SIZE)]
        with self._table.batch_writer() as batch:
            batch.put_item(
                Item={
                    "pk": f"BULK#{bulk_id}",
                    "sk": "META",
                    "bulk_id": bulk_id,
                    "client_id": client_id,
                    "created_at": now_iso(),
                    "item_count": len(items),
                    "page_count": len(pages),
                }
            )
            for number, page in enumerate(pages):
                batch.put_item(
                    Item={"pk": f"BULK#{bulk_id}", "sk": f"PAGE#{number:05d}", "items": _dynamo_safe(page)}
                )

    def get_bulk(self, bulk_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        from boto3.dynamodb.conditions import Key

        query = {"KeyConditionExpression": Key("pk").eq(f"BULK#{bulk_id}"), "ConsistentRead": True}
        rows: list[dict[str, Any]] = []
        while True:
            page = self._table.query(**query)
            rows.extend(_plain(item) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        meta = next((row for row in rows if row["sk"] == "META"), None)
        if meta is None:
            raise NotificationNotFound(f"no bulk request {bulk_id}")
        items = [
            item
            for row in sorted(
                (row for row in rows if row["sk"].startswith("PAGE#")), key=lambda row: row["sk"]
            )
            for item in row["items"]
        ]
        meta.pop("pk", None)
        meta.pop("sk", None)
        return meta, items

    # --- internals ------------------------------------------------------------------------------
    def _set(self, notification_id: str, values: dict[str, Any], condition: Any = None) -> None:
        """SET ``values`` on an existing notification; with ``condition``, a failed check is raised as is."""
        from boto3.dynamodb.conditions import Attr

        names, assigns, attr_values = _assignments(values)
        try:
            self._table.update_item(
                Key=notification_key(notification_id),
                UpdateExpression="SET " + ", ".join(assigns),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=attr_values,
                ConditionExpression=condition if condition is not None else Attr("pk").exists(),
            )
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            if condition is not None:
                raise  # the caller tells a kept status from a missing notification
            raise NotificationNotFound(f"no notification {notification_id}") from None


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES


def _assignments(values: dict[str, Any]) -> tuple[dict[str, str], list[str], dict[str, Any]]:
    """UpdateExpression pieces for dotted paths (``channels.email.status``) with safe placeholders."""
    names: dict[str, str] = {}
    assigns: list[str] = []
    attr_values: dict[str, Any] = {}
    for index, (path, value) in enumerate(values.items()):
        parts = []
        for part in path.split("."):
            placeholder = f"#f{len(names)}"
            names[placeholder] = part
            parts.append(placeholder)
        attr_values[f":u{index}"] = _dynamo_safe(value)
        assigns.append(f"{'.'.join(parts)} = :u{index}")
    return names, assigns, attr_values


def _dynamo_safe(value: Any) -> Any:
    """DynamoDB refuses floats and empty strings in some places: turn floats into Decimals."""
    from decimal import Decimal

    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {key: _dynamo_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_dynamo_safe(item) for item in value]
    return value


def _plain(value: Any) -> Any:
    """Decimals back to int/float so items serialise as JSON."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


@lru_cache(maxsize=1)
def get_store() -> NotificationStore:
    """The store for ``NOTIFICATIONS_TABLE``, built once per container (no I/O until first use)."""
    import boto3

    from tidings.notifications.settings import store_settings

    return NotificationStore(boto3.resource("dynamodb").Table(store_settings().notifications_table))
