"""What the breaker's and the bucket's DynamoDB stores share: numbers as DynamoDB wants them, the
strongly consistent read of a state item, and a put that lands only on the version it read (optimistic
concurrency, so racing containers never both win)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def number(value: float) -> dict[str, str]:
    """A float as a DynamoDB number, exactly as Python prints it (``repr``: no binary-float noise)."""
    return {"N": str(Decimal(repr(value)))}


def put_if_version(
    client: Any,
    table_name: str,
    item: dict[str, Any],
    expected_version: int | None,
    unavailable: type[Exception],
) -> bool:
    """Writes ``item`` if the stored one is still at ``expected_version`` (None: only if there is none).

    False when another container wrote first; any other failure raises ``unavailable`` (the caller's own
    typed error, which decides how it fails: the breaker open, the bucket without its shared state)."""
    if expected_version is None:
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(id)"}
    else:
        condition = {
            "ConditionExpression": "#version = :expected",
            "ExpressionAttributeNames": {"#version": "version"},
            "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
        }
    try:
        client.put_item(TableName=table_name, Item=item, **condition)
    except Exception as exc:
        if getattr(exc, "response", {}).get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise unavailable(type(exc).__name__) from exc
    return True


def read_item(client: Any, table_name: str, key: str, unavailable: type[Exception]) -> dict[str, Any] | None:
    """The state item under ``id = key``, strongly consistent (a decision on a stale copy would let two
    containers both win), or None; a failure raises the caller's ``unavailable``."""
    try:
        item: dict[str, Any] | None = client.get_item(
            TableName=table_name, Key={"id": {"S": key}}, ConsistentRead=True
        ).get("Item")
    except Exception as exc:
        raise unavailable(type(exc).__name__) from exc
    return item
