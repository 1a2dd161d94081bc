"""The local system writes DynamoDB's data-plane answers without moto's shape walk (patches.py); what a
client reads must not change: every answer of a session that uses each attribute type and each action
is written both ways and compared."""

import json

import boto3
import pytest
from moto import mock_aws
from moto.core.responses import BaseResponse
from moto.dynamodb.responses import DynamoHandler
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

from tidings_local.stack import patches

pytestmark = pytest.mark.unit

EVERY_TYPE = {
    "pk": {"S": "NOTIFICATION#1"},
    "sk": {"S": "META"},
    "gsi": {"S": "ORDER#1"},
    "tally": {"N": "3"},
    "ratio": {"N": "0.25"},
    "blob": {"B": b"\x00\x01binary\xff"},
    "tags": {"SS": ["a", "b"]},
    "numbers": {"NS": ["1", "2.5"]},
    "blobs": {"BS": [b"x", b"y"]},
    "channels": {"M": {"email": {"M": {"status": {"S": "pending"}, "attempts": {"N": "0"}}}}},
    "steps": {"L": [{"S": "charged"}, {"M": {"at": {"N": "1"}}}, {"NULL": True}]},
    "gone": {"NULL": True},
    "flag": {"BOOL": False},
}


def _session(client) -> None:
    table = "notifications"
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "gsi")],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-order",
                "KeySchema": [{"AttributeName": "gsi", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    key = {"pk": EVERY_TYPE["pk"], "sk": EVERY_TYPE["sk"]}
    client.put_item(TableName=table, Item=EVERY_TYPE, ConditionExpression="attribute_not_exists(pk)")
    client.put_item(TableName=table, Item=EVERY_TYPE, ReturnValues="ALL_OLD", ReturnConsumedCapacity="TOTAL")
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        client.put_item(
            TableName=table,
            Item=EVERY_TYPE,
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    client.get_item(TableName=table, Key=key, ConsistentRead=True)
    client.get_item(TableName=table, Key={"pk": {"S": "NOTIFICATION#2"}, "sk": {"S": "META"}})
    client.get_item(
        TableName=table,
        Key=key,
        ProjectionExpression="#c.email, #b",
        ExpressionAttributeNames={"#c": "channels", "#b": "blob"},
    )
    for returned in ("NONE", "ALL_NEW", "ALL_OLD", "UPDATED_NEW", "UPDATED_OLD"):
        client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET #c.email.#s = :s ADD #n :one",
            ExpressionAttributeNames={"#c": "channels", "#s": "status", "#n": "tally"},
            ExpressionAttributeValues={":s": {"S": returned}, ":one": {"N": "1"}},
            ReturnValues=returned,
            ReturnConsumedCapacity="TOTAL",
        )
    for index in range(3):
        client.put_item(TableName=table, Item={**EVERY_TYPE, "sk": {"S": f"STEP#{index}"}})
    client.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": EVERY_TYPE["pk"]},
        Limit=2,
    )
    client.query(
        TableName=table,
        IndexName="by-order",
        KeyConditionExpression="gsi = :g",
        ExpressionAttributeValues={":g": EVERY_TYPE["gsi"]},
        Select="COUNT",
    )
    client.scan(TableName=table, Limit=3, ReturnConsumedCapacity="TOTAL")
    client.batch_get_item(RequestItems={table: {"Keys": [key, {**key, "sk": {"S": "STEP#0"}}]}})
    client.batch_write_item(
        RequestItems={
            table: [
                {"PutRequest": {"Item": {**EVERY_TYPE, "sk": {"S": "STEP#9"}}}},
                {"DeleteRequest": {"Key": {**key, "sk": {"S": "STEP#1"}}}},
            ]
        }
    )
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table, "Item": {**EVERY_TYPE, "sk": {"S": "CLAIM"}}}},
            {
                "Update": {
                    "TableName": table,
                    "Key": key,
                    "UpdateExpression": "SET flag = :t",
                    "ExpressionAttributeValues": {":t": {"BOOL": True}},
                }
            },
        ]
    )
    client.transact_get_items(TransactItems=[{"Get": {"TableName": table, "Key": key}}])
    client.delete_item(TableName=table, Key=key, ReturnValues="ALL_OLD")
    client.delete_item(TableName=table, Key=key)


def _stream_session(client, streams) -> None:
    # moto keeps a stream image's binary value base64-encoded and its serializer encodes it again;
    # the direct writer encodes once, as AWS does: the stream's table holds no binary attribute here.
    table = "audit"
    without_binary = {name: value for name, value in EVERY_TYPE.items() if name not in ("blob", "blobs")}
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk")],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    client.put_item(TableName=table, Item=without_binary)
    client.update_item(
        TableName=table,
        Key={"pk": without_binary["pk"], "sk": without_binary["sk"]},
        UpdateExpression="SET flag = :t",
        ExpressionAttributeValues={":t": {"BOOL": True}},
    )
    stream = client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=stream)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=10)
    assert [record["eventName"] for record in records["Records"]] == ["INSERT", "MODIFY"]
    streams.get_records(ShardIterator=records["NextShardIterator"])


@mock_aws
def test_every_data_plane_answer_reads_the_same_as_motos_own(monkeypatch):
    # Given both writers of each answer: moto's shape walk and the direct one
    compared: list[str] = []
    differences = []

    def comparing(service):
        def serialized(self, action_result):
            status, headers, body = BaseResponse.serialized(self, action_result)
            action = self._get_action()
            direct = patches.direct_dynamodb_body(service, action, action_result.result)
            if direct is not None:
                compared.append(action)
                if status != 200 or json.loads(direct) != json.loads(body):
                    differences.append((action, status, body, direct))
            return status, headers, body

        return serialized

    monkeypatch.setattr(DynamoHandler, "serialized", comparing("dynamodb"))
    monkeypatch.setattr(DynamoDBStreamsHandler, "serialized", comparing("dynamodbstreams"))

    # When a session uses every attribute type, every ReturnValues, every data-plane action and a stream
    client = boto3.client("dynamodb", region_name="us-east-1")
    _session(client)
    _stream_session(client, boto3.client("dynamodbstreams", region_name="us-east-1"))

    # Then each direct answer is moto's, and errors and the control plane were left to moto
    assert not differences
    assert set(compared) == set().union(*patches.DIRECT_ACTIONS.values())
    assert not {"CreateTable", "DescribeStream", "GetShardIterator"} & set(compared)


@mock_aws
def test_a_client_reads_the_same_items_through_the_direct_writer(monkeypatch):
    # Given moto with the direct writer installed
    monkeypatch.setattr(DynamoHandler, "serialized", DynamoHandler.serialized)
    monkeypatch.setattr(DynamoDBStreamsHandler, "serialized", DynamoDBStreamsHandler.serialized)
    patches._serialize_dynamodb_results_directly()
    assert getattr(DynamoHandler.serialized, patches.MARK, False)
    assert getattr(DynamoDBStreamsHandler.serialized, patches.MARK, False)
    client = boto3.client("dynamodb", region_name="us-east-1")

    # When a session runs, then boto3 parses every answer (CRC32 and all) and reads back what was written
    _session(client)
    _stream_session(client, boto3.client("dynamodbstreams", region_name="us-east-1"))
    item = client.get_item(TableName="notifications", Key={"pk": EVERY_TYPE["pk"], "sk": {"S": "STEP#0"}})[
        "Item"
    ]
    assert item == EVERY_TYPE | {"sk": {"S": "STEP#0"}}


@mock_aws
def test_every_result_is_converted_as_by_motos_own_function(monkeypatch):
    from moto.dynamodb import responses
    from moto.dynamodb.models import utilities

    # Given moto's conversion and the sped-up one, each result converted by both
    monkeypatch.setattr(responses, "dynamo_to_dict", utilities.dynamo_to_dict)
    patches._convert_dynamodb_results_directly()
    sped_up = responses.dynamo_to_dict
    assert getattr(sped_up, patches.MARK, False)
    differences, converted = [], []

    def comparing(obj):
        ours, theirs = sped_up(obj), utilities.dynamo_to_dict(obj)
        converted.append(obj)
        if ours != theirs:
            differences.append((ours, theirs))
        return theirs

    monkeypatch.setattr(responses, "dynamo_to_dict", comparing)

    # When a session uses every attribute type and every data-plane action, and a stream
    client = boto3.client("dynamodb", region_name="us-east-1")
    _session(client)
    _stream_session(client, boto3.client("dynamodbstreams", region_name="us-east-1"))

    # Then both converted every result alike (binary values and table descriptions among them)
    assert converted
    assert not differences
