"""The moto internals the local system replaces exist, and a missing one stops the start loudly."""

import ast
from pathlib import Path

import pytest

from tidings_local.stack import patches
from tidings_local.stack.patches import PatchTargetMissing, Target, check_targets

pytestmark = pytest.mark.unit

LOCAL = Path(patches.__file__).resolve().parents[1]
PATCHED_PACKAGES = ("moto", "aws_lambda_powertools")


def test_every_target_of_the_pinned_moto_exists_with_the_expected_parameters():
    check_targets()


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (Target("moto.no_such_module", "anything", ()), "cannot be imported"),
        (Target("moto.awslambda.models", "LambdaFunction.no_such_method", ()), "'no_such_method' no longer"),
        (Target("moto.awslambda.models", "NoSuchClass.invoke", ()), "'NoSuchClass' no longer"),
        (Target("moto.awslambda.models", "LambdaFunction.invoke", ("self", "body")), "parameters are"),
    ],
)
def test_a_missing_or_reshaped_target_is_named_in_the_error(target, reason):
    with pytest.raises(PatchTargetMissing) as raised:
        check_targets((target,))

    assert target.name in str(raised.value)
    assert reason in str(raised.value)


def test_every_problem_is_listed_at_once():
    broken = (Target("moto.no_such_module", "a", ()), Target("moto.awslambda.models", "Nope.invoke", ()))

    with pytest.raises(PatchTargetMissing) as raised:
        check_targets((*patches.TARGETS, *broken))

    assert all(target.name in str(raised.value) for target in broken)


@pytest.mark.parametrize(
    "install",
    [patches.install_moto_speedups, patches.install_atomic_backends, patches.install_moto_lambda_patch],
)
def test_nothing_is_installed_when_a_target_is_missing(monkeypatch, install):
    # Given a moto whose LambdaFunction lost its invoke method
    from moto.awslambda.models import LambdaFunction

    before = LambdaFunction.invoke
    monkeypatch.setattr(patches, "TARGETS", (Target("moto.awslambda.models", "LambdaFunction.gone", ()),))

    # When a patch is installed, then the start fails and moto is untouched
    with pytest.raises(PatchTargetMissing, match=r"LambdaFunction\.gone"):
        install(*([None] if install is patches.install_moto_lambda_patch else []))
    assert LambdaFunction.invoke is before


def _patched_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PATCHED_PACKAGES):
            names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {
                (alias.asname or alias.name).split(".")[0]
                for alias in node.names
                if alias.name.startswith(PATCHED_PACKAGES)
            }
    return names


def _root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def test_no_other_local_module_patches_moto_or_powertools():
    offenders = []
    for path in sorted(LOCAL.rglob("*.py")):
        if path == Path(patches.__file__).resolve():
            continue
        tree = ast.parse(path.read_text())
        imported = _patched_names(tree)
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setattr" and node.args:
                targets = [ast.Attribute(value=node.args[0], attr="?")]
            for target in targets:
                if isinstance(target, ast.Attribute) and _root(target) in imported:
                    offenders.append(f"{path.relative_to(LOCAL)}:{node.lineno}")
            if isinstance(node, ast.Call) and ast.unparse(node).startswith("contextlib.suppress(ImportError"):
                offenders.append(f"{path.relative_to(LOCAL)}:{node.lineno} (suppressed ImportError)")

    assert offenders == []


def test_sqs_still_drops_a_message_older_than_its_queue_retention_once_sped_up():
    import boto3
    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    # Given the speed-ups, and two queues keeping messages for 60 s, one holding a message sent 61 s ago
    patches.install_moto_speedups()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        fresh, stale = (
            sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
            for name in ("fresh", "stale")
        )
        for url in (fresh, stale):
            sqs.send_message(QueueUrl=url, MessageBody="body")
        sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].queues["stale"]._messages[0].sent_timestamp -= 61_000

        # When each is received from, then only the message within the retention period comes back
        assert len(sqs.receive_message(QueueUrl=fresh).get("Messages", [])) == 1
        assert sqs.receive_message(QueueUrl=stale).get("Messages", []) == []


def test_a_json_path_parsed_once_still_reads_each_execution_s_own_input():
    patches.install_moto_speedups()
    from moto.stepfunctions.parser.asl.utils import json_path

    # Given one path the definition fixes, evaluated for two executions' inputs
    first = json_path.extract_json("$.order.amount", {"order": {"amount": 1200}})
    second = json_path.extract_json("$.order.amount", {"order": {"amount": 900}})

    # Then each reads its own input, from the one parsed path
    assert (first, second) == (1200, 900)
    assert json_path.parse.cache_info().hits >= 1


def test_a_handler_class_s_methods_are_listed_once_and_still_name_its_actions():
    patches.install_moto_speedups()
    from moto.core import responses
    from moto.dynamodb.responses import DynamoHandler

    first = responses.method_names_from_class(DynamoHandler)

    assert {"get_item", "update_item", "transact_write_items"} <= set(first)
    assert responses.method_names_from_class(DynamoHandler) is first


def test_sqs_sped_up_still_counts_and_returns_only_the_visible_undelayed_messages():
    import boto3
    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    # Given the speed-ups, and a queue with two visible messages, one delayed and one received (in flight)
    patches.install_moto_speedups()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="in flight")
        in_flight = sqs.receive_message(QueueUrl=url)["Messages"]
        sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=60)
        for body in ("one", "two"):
            sqs.send_message(QueueUrl=url, MessageBody=body)
        counts = {"ApproximateNumberOf" + name: "1" for name in ("MessagesNotVisible", "MessagesDelayed")}

        # Then the counts say so, and a receive returns the visible ones only
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes | counts == attributes
        assert attributes["ApproximateNumberOfMessages"] == "2"
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert sorted(m["Body"] for m in received) == ["one", "two"]

        # And once the first one's visibility timeout has passed, it is visible again
        queue = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].queues["q"]
        first = next(m for m in queue._messages if m.receipt_handle == in_flight[0]["ReceiptHandle"])
        first.visible_at -= 31_000
        again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert [m["Body"] for m in again] == ["in flight"]


def test_concurrent_receivers_each_get_a_message_once_as_from_sqs():
    import threading
    from collections import Counter

    import boto3
    from moto import mock_aws

    # Given SQS made atomic as on AWS, and a queue of 2,000 messages
    patches.install_atomic_backends()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
        for start in range(0, 2000, 10):
            entries = [{"Id": str(n), "MessageBody": str(start + n)} for n in range(10)]
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
        received: Counter[str] = Counter()
        errors: list[Exception] = []
        lock = threading.Lock()

        def receive_and_delete_every_other() -> None:
            client = boto3.client("sqs", region_name="us-east-1")
            try:
                while messages := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
                    "Messages"
                ):
                    with lock:
                        received.update(message["Body"] for message in messages)
                    handles = [
                        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)
                    ]
                    client.delete_message_batch(QueueUrl=url, Entries=handles[::2])
            except Exception as exc:  # collected for the assertion
                errors.append(exc)

        # When eight receivers drain it at once, deleting as they go
        threads = [threading.Thread(target=receive_and_delete_every_other) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        # Then each message was received exactly once, and no receive or delete failed
        assert errors == []
        assert len(received) == 2000
        assert set(received.values()) == {1}


#: A table keyed as Tidings' notifications table is: a partition key and a sort key.
TABLE_KEYS = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]


def test_a_cancelled_transaction_leaves_the_table_and_its_stream_as_they_were_without_copying_the_table():
    import boto3
    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    # Given the speed-ups, and a table with a stream holding one item
    patches.install_moto_speedups()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="t",
            KeySchema=TABLE_KEYS,
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk")],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        kept = {"pk": {"S": "A"}, "sk": {"S": "META"}}
        ddb.put_item(TableName="t", Item={**kept, "status": {"S": "pending"}})
        table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables["t"]
        records = len(table.stream_shard.items)
        update = {
            "TableName": "t",
            "Key": kept,
            "UpdateExpression": "SET #s = :s",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": {"S": "sent"}},
        }

        # When a transaction adds an item and updates the other, and then a condition of it fails
        with pytest.raises(ddb.exceptions.TransactionCanceledException):
            ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "t", "Item": {"pk": {"S": "B"}, "sk": {"S": "META"}}}},
                    {"Update": update},
                    {
                        "ConditionCheck": {
                            "TableName": "t",
                            "Key": {"pk": {"S": "C"}, "sk": {"S": "META"}},
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                ]
            )

        # Then neither write stands, the stream has no record of them, and the table is the same object
        # (moto would have put a copy of the whole table in its place)
        assert ddb.get_item(TableName="t", Key=kept)["Item"]["status"] == {"S": "pending"}
        assert "Item" not in ddb.get_item(TableName="t", Key={"pk": {"S": "B"}, "sk": {"S": "META"}})
        assert len(table.stream_shard.items) == records
        assert dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables["t"] is table

        # And a transaction that passes writes both, each with its stream record
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "B"}, "sk": {"S": "META"}}}},
                {"Update": update},
            ]
        )
        assert ddb.get_item(TableName="t", Key=kept)["Item"]["status"] == {"S": "sent"}
        assert "Item" in ddb.get_item(TableName="t", Key={"pk": {"S": "B"}, "sk": {"S": "META"}})
        assert len(table.stream_shard.items) == records + 2


def test_a_query_answers_as_moto_s_own_over_a_partition_and_over_an_index(monkeypatch):
    import boto3
    from moto import mock_aws
    from moto.dynamodb.models.table import Table

    # Given the speed-ups, and a table of several partitions with an index (with and without a sort key)
    patches.install_moto_speedups()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="t",
            KeySchema=TABLE_KEYS,
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": kind}
                for name, kind in (("pk", "S"), ("sk", "S"), ("order", "S"), ("at", "N"))
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": name,
                    "KeySchema": [{"AttributeName": "order", "KeyType": "HASH"}, *range_key],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for name, range_key in (
                    ("by-order", []),
                    ("by-order-at", [{"AttributeName": "at", "KeyType": "RANGE"}]),
                )
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for n in range(40):
            item = {"pk": {"S": f"N#{n % 7}"}, "sk": {"S": f"T#{n:03d}"}, "at": {"N": str(40 - n)}}
            if n % 3:
                item["order"] = {"S": f"o{n % 4}"}
            ddb.put_item(TableName="t", Item=item)
        queries = [
            {"KeyConditionExpression": "pk = :v", "ExpressionAttributeValues": {":v": {"S": "N#3"}}},
            {
                "KeyConditionExpression": "pk = :v AND begins_with(sk, :p)",
                "ExpressionAttributeValues": {":v": {"S": "N#2"}, ":p": {"S": "T#0"}},
                "ScanIndexForward": False,
            },
            {"KeyConditionExpression": "pk = :v", "ExpressionAttributeValues": {":v": {"S": "N#9"}}},
            {
                "IndexName": "by-order",
                "KeyConditionExpression": "#o = :v",
                "ExpressionAttributeNames": {"#o": "order"},
                "ExpressionAttributeValues": {":v": {"S": "o1"}},
            },
            {
                "IndexName": "by-order-at",
                "KeyConditionExpression": "#o = :v AND #a > :a",
                "ExpressionAttributeNames": {"#o": "order", "#a": "at"},
                "ExpressionAttributeValues": {":v": {"S": "o2"}, ":a": {"N": "10"}, ":p": {"S": "N#"}},
                "FilterExpression": "begins_with(pk, :p)",
            },
        ]

        def answers() -> list:
            pages = []
            for query in queries:
                start: dict = {}
                while True:  # two items a page: the pagination keys must match as well
                    page = ddb.query(TableName="t", Limit=2, **query, **start)
                    pages.append((page["Items"], page.get("LastEvaluatedKey")))
                    if "LastEvaluatedKey" not in page:
                        break
                    start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
            return pages

        # When each query is asked with the speed-up, and again with moto's own query
        assert getattr(Table.query, patches.MARK, False)
        sped_up = answers()
        monkeypatch.setattr(Table, "query", Table.query.__wrapped__)
        monkeypatch.setattr(Table, "all_items", Table.all_items.__wrapped__)
        own = answers()

    # Then every page is the same, and the queries found something to compare
    assert sped_up == own
    assert sum(len(items) for items, _ in own) > 20
