"""The suppression table: one item per (channel, address), keyed by its ``suppression_id``."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from tidings.suppressions.models import Suppression, SuppressionChannel, suppression_id


def _cursor(key: dict[str, Any] | None) -> str | None:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode() if key else None


class InvalidCursor(ValueError):
    """A listing cursor that this store did not hand out."""


def _start_key(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        raise InvalidCursor("cursor is not one this API handed out") from None
    if not isinstance(key, dict) or set(key) != {"suppression_id"}:
        raise InvalidCursor("cursor is not one this API handed out")
    return key


class SuppressionStore:
    """Reads and writes the suppression table (a boto3 ``Table``); no other module touches it."""

    def __init__(self, table: Any) -> None:
        self.table = table

    @staticmethod
    def now() -> str:
        return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def get(self, channel: SuppressionChannel, address: str) -> Suppression | None:
        """The entry for this address, if it is suppressed (``ValueError`` if it is no address)."""
        return self.get_by_id(suppression_id(channel, address))

    def get_by_id(self, entry_id: str) -> Suppression | None:
        item = self.table.get_item(Key={"suppression_id": entry_id}, ConsistentRead=True).get("Item")
        return Suppression.model_validate(item) if item else None

    def add(self, entry: Suppression) -> tuple[Suppression, bool]:
        """Keep ``entry`` unless the address is already suppressed; (the entry kept, whether it is new).

        The first reason stays: a later signal for the same address (a second STOP) changes nothing.
        """
        from botocore.exceptions import ClientError

        item = entry.model_dump(mode="json", exclude_none=True)
        try:
            self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(suppression_id)")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            existing = self.get_by_id(entry.suppression_id)
            return (existing or entry), False
        return entry, True

    def remove(self, entry_id: str) -> Suppression | None:
        """Delete the entry; the entry as it was, or None if there was none."""
        old = self.table.delete_item(Key={"suppression_id": entry_id}, ReturnValues="ALL_OLD")
        item = old.get("Attributes")
        return Suppression.model_validate(item) if item else None

    def list(
        self, channel: SuppressionChannel | None = None, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Suppression], str | None]:
        """One page of entries (a scan: the list is an operator's tool, not a hot path)."""
        from boto3.dynamodb.conditions import Attr

        entries: list[Suppression] = []
        start = _start_key(cursor)
        while True:
            args: dict[str, Any] = {"Limit": limit - len(entries)}
            if channel:
                args["FilterExpression"] = Attr("channel").eq(channel)
            if start:
                args["ExclusiveStartKey"] = start
            page = self.table.scan(**args)
            entries += [Suppression.model_validate(item) for item in page.get("Items", [])]
            start = page.get("LastEvaluatedKey")
            if not start or len(entries) >= limit:
                break
        return entries, _cursor(start)


@lru_cache(maxsize=1)
def get_suppression_store() -> SuppressionStore:
    """The store for ``SUPPRESSIONS_TABLE``, built once per container (no I/O until first use)."""
    import boto3

    from tidings.suppressions.settings import suppression_settings

    return SuppressionStore(boto3.resource("dynamodb").Table(suppression_settings().suppressions_table))
