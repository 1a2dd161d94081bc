"""What the breaker's and the bucket's DynamoDB stores share: numbers as DynamoDB wants them, and a put
that lands only on the version it read (optimistic concurrency, so racing containers never both win)."""

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
    won, _ = put_if_version_or_current(client, table_name, item, expected_version, unavailable)
    return won


def put_if_version_or_current(
    client: Any,
    table_name: str,
    item: dict[str, Any],
    expected_version: int | None,
    unavailable: type[Exception],
) -> tuple[bool, dict[str, Any] | None]:
    """:func:`put_if_version`, and when another container wrote first, the item it wrote (None: there is
    none), from the failed write itself (``ReturnValuesOnConditionCheckFailure``): no read to retry on."""
    if expected_version is None:
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(id)"}
    else:
        condition = {
            "ConditionExpression": "#version = :expected",
            "ExpressionAttributeNames": {"#version": "version"},
            "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
        }
    try:
        client.put_item(
            TableName=table_name, Item=item, ReturnValuesOnConditionCheckFailure="ALL_OLD", **condition
        )
    except Exception as exc:
        response = getattr(exc, "response", {})
        if response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False, response.get("Item")
        raise unavailable(type(exc).__name__) from exc
    return True, None
