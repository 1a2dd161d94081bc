"""The local DynamoDB stream poller: Lambda's filter patterns, a failed batch retried as it is, and
after its retries the batch's position (never its records) sent to the on-failure destination."""

import json

import pytest

from tidings_local.stack.stream_poller import StreamMapping, StreamPoller, kept, matches

pytestmark = pytest.mark.unit

PATTERN = {
    "eventName": ["MODIFY"],
    "dynamodb": {"Keys": {"sk": {"S": ["META"]}, "pk": {"S": [{"prefix": "NOTIFICATION#"}]}}},
}


def record(name="MODIFY", pk="NOTIFICATION#n1", sk="META", sequence="100"):
    return {
        "eventName": name,
        "dynamodb": {
            "Keys": {"pk": {"S": pk}, "sk": {"S": sk}},
            "SequenceNumber": sequence,
            "NewImage": {"customer": {"M": {"email": {"S": "ada@example.com"}}}},
        },
    }


def test_the_templates_filter_keeps_changed_notifications_only():
    assert matches(PATTERN, record())
    assert not matches(PATTERN, record(name="INSERT"))
    assert not matches(PATTERN, record(sk="EVENT#2026"))
    assert not matches(PATTERN, record(pk="PAYMENT_INTENT#pi_1"))
    assert kept(record(name="REMOVE"), [])  # no filter keeps everything
    assert kept(record(name="INSERT"), [PATTERN, {"eventName": ["INSERT"]}])  # any one pattern


class Result:
    def __init__(self, error):
        self.error_type = error

    @property
    def failed(self):
        return self.error_type is not None


class Runtime:
    def __init__(self, *errors):
        self.errors = list(errors)
        self.events = []

    def invoke(self, name, event):
        self.events.append(event)
        return Result(self.errors.pop(0) if self.errors else None)


class Sqs:
    def __init__(self):
        self.sent = []

    def get_queue_url(self, QueueName):  # noqa: N803 - boto3's name
        return {"QueueUrl": f"https://sqs.local/{QueueName}"}

    def send_message(self, QueueUrl, MessageBody):  # noqa: N803
        self.sent.append((QueueUrl, json.loads(MessageBody)))


def poller(runtime, sqs, retries):
    mapping = StreamMapping(
        logical_id="Publish",
        function_name="publish",
        stream_arn="arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
        maximum_retry_attempts=retries,
        on_failure_queue_arn="arn:aws:sqs:us-east-1:123456789012:status-dlq",
    )
    return StreamPoller(mapping, runtime, streams_client=None, sqs_client=sqs, retry_seconds=0)


def test_a_failed_batch_is_retried_as_it_is_until_it_succeeds():
    runtime, sqs = Runtime("StatusEventsNotPublished", "StatusEventsNotPublished"), Sqs()
    batch = [record(sequence="1"), record(sequence="2")]
    assert poller(runtime, sqs, retries=5).process(batch)
    assert [event["Records"] for event in runtime.events] == [batch, batch, batch]
    assert sqs.sent == []


def test_after_its_retries_the_batch_position_goes_to_the_destination_without_its_records():
    runtime, sqs = Runtime(*["Boom"] * 10), Sqs()
    assert not poller(runtime, sqs, retries=2).process([record(sequence="7"), record(sequence="9")])
    assert len(runtime.events) == 3  # the first try and two retries
    [(url, described)] = sqs.sent
    assert url == "https://sqs.local/status-dlq"
    assert described["DDBStreamBatchInfo"]["startSequenceNumber"] == "7"
    assert described["DDBStreamBatchInfo"]["endSequenceNumber"] == "9"
    assert described["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert "ada@example.com" not in json.dumps(described)
