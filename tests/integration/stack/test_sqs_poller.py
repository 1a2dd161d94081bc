"""SQS -> Lambda with the real batch semantics: partial batch failures, redrive after maxReceiveCount."""

from __future__ import annotations

import pytest

from tidings_local.stack.sqs_poller import failed_item_ids
from tidings_local.stack.system import LocalSystem

pytestmark = pytest.mark.integration


def test_failed_items_are_redriven_to_the_dlq_and_the_rest_is_processed_once(
    probe_system: LocalSystem, wait_for
) -> None:
    sqs = probe_system.boto3_client("sqs")
    ddb = probe_system.boto3_client("dynamodb")
    table = probe_system.physical_id("ProbeTable")
    dlq_url = probe_system.physical_id("WorkDeadLetterQueue")

    # Given a warm BatchFunction (a cold start must not outlast the queue's 2 s visibility timeout)
    assert not probe_system.invoke("BatchFunction", {"Records": []}).failed
    # and two good messages and one the handler reports as a batch item failure
    for body in ("ok-1", "ok-2", "fail-1"):
        sqs.send_message(QueueUrl=probe_system.physical_id("WorkQueue"), MessageBody=body)

    # When the poller has worked through the queue (WorkQueue: maxReceiveCount 2; the handler makes a
    # failed message visible again at once): the good ones recorded, the failing one dead-lettered
    def processed(body: str) -> dict | None:
        return ddb.get_item(TableName=table, Key={"pk": {"S": f"processed#{body}"}}).get("Item")

    def dead_lettered() -> list[dict]:
        return sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", [])

    wait_for(lambda: processed("ok-1") and processed("ok-2"), timeout=60)
    dlq_messages = wait_for(dead_lettered, timeout=60)

    # Then only the failing message reached the DLQ, after being received maxReceiveCount times
    assert [m["Body"] for m in dlq_messages] == ["fail-1"]
    assert dlq_messages[0]["Attributes"]["ApproximateReceiveCount"] == "3"  # 2 by the poller + this receive
    # and the good ones were processed exactly once and deleted, not retried
    for body in ("ok-1", "ok-2"):
        assert processed(body)["receive_count"]["N"] == "1"
    attributes = sqs.get_queue_attributes(
        QueueUrl=probe_system.physical_id("WorkQueue"),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ({"batchItemFailures": []}, set()),
        (None, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}),
        # AWS fails the whole batch when the response names an unknown or empty identifier
        ({"batchItemFailures": [{"itemIdentifier": "unknown"}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
        ({"batchItemFailures": "m1"}, None),
    ],
)
def test_report_batch_item_failures_response_is_read_as_lambda_reads_it(response, expected) -> None:
    assert failed_item_ids(response, ["m1", "m2"]) == expected
