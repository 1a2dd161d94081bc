"""The local DynamoDB keeps AWS's promise that a conditional write is atomic, under concurrent callers."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tidings_local.stack.system import LocalSystem

pytestmark = pytest.mark.integration

WRITERS = 8
TRIES = 40


def test_concurrent_compare_and_set_writes_lose_no_update(probe_system: LocalSystem) -> None:
    # Given a counter item that several writers increment by compare-and-set (the shape of every
    # forward-only status write: read, then write only if the value is still the one read)
    ddb = probe_system.boto3_client("dynamodb")
    table = probe_system.physical_id("ProbeTable")
    key = {"pk": {"S": "atomicity#counter"}}
    ddb.put_item(TableName=table, Item={**key, "n": {"N": "0"}})
    # botocore builds a client's exception classes on first use; built by several threads at once, a
    # thread can raise a class other than the one another thread's except names.
    conflict = ddb.exceptions.ConditionalCheckFailedException

    def increment_until_one_lands(_: int) -> int:
        won = 0
        for _ in range(TRIES):
            seen = ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]["n"]["N"]
            try:
                ddb.update_item(
                    TableName=table,
                    Key=key,
                    UpdateExpression="SET n = :next",
                    ConditionExpression="n = :seen",
                    ExpressionAttributeValues={":seen": {"N": seen}, ":next": {"N": str(int(seen) + 1)}},
                )
                won += 1
            except conflict:
                pass  # another writer moved it first: read again
        return won

    # When they all write at once, the interpreter switching threads as often as it can (moto serves
    # them in this process: a switch between its condition check and its write is what would let two
    # writers both pass)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(WRITERS) as pool:
            successes = sum(pool.map(increment_until_one_lands, range(WRITERS)))
    finally:
        sys.setswitchinterval(interval)

    # Then every write DynamoDB accepted is in the item: no two passed the same condition
    final = ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]["n"]["N"]
    assert successes > 0
    assert int(final) == successes
