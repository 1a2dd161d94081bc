"""`tidings dlq list|redrive` against SQS (moto): found by stack names, redriven to the source queue."""

import json

import boto3
import pytest

from tidings_ops.cli import main

pytestmark = pytest.mark.unit


@pytest.fixture
def queues(aws):
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="tidings-dev-EmailDeadLetterQueue-1A2B3C")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    retry = sqs.create_queue(
        QueueName="tidings-dev-EmailRetryQueue-4D5E6F",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "20"})},
    )["QueueUrl"]
    for n in range(12):
        body = {
            "kind": "email",
            "channel": "email",
            "notification_id": f"n-{n}",
            "error": {"Error": "NetworkError"},
        }
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(body))
    return sqs, dlq, retry


def count(sqs, url):
    return int(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )


def test_list_shows_counts_and_parked_messages_by_id_and_error(queues, capsys):
    _sqs, _dlq, _retry = queues
    assert main(["dlq", "list", "--stack", "tidings-dev", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["queue"], row["messages"]) == ("email", 12)
    assert main(["dlq", "list", "email", "--stack", "tidings-dev", "--peek", "3", "--json"]) == 0
    peeked = json.loads(capsys.readouterr().out)
    assert len(peeked) == 3
    assert {message["error_type"] for message in peeked} == {"NetworkError"}


def test_redrive_moves_every_message_back_to_its_source_queue(queues, capsys):
    sqs, dlq, retry = queues
    assert main(["dlq", "redrive", "email", "--stack", "tidings-dev", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["moved"] == 12
    assert result["to"] == retry
    assert count(sqs, dlq) == 0
    assert count(sqs, retry) == 12


def test_redrive_max_and_dry_run(queues, capsys):
    sqs, _dlq, retry = queues
    main(["dlq", "redrive", "email", "--stack", "tidings-dev", "--dry-run", "--max", "5", "--json"])
    assert json.loads(capsys.readouterr().out)["dry_run"] is True
    assert count(sqs, retry) == 0
    main(["dlq", "redrive", "email", "--stack", "tidings-dev", "--max", "5", "--json"])
    assert json.loads(capsys.readouterr().out)["moved"] == 5
    assert count(sqs, retry) == 5


def test_an_unknown_stack_is_a_clear_error(queues, capsys):
    assert main(["dlq", "redrive", "email", "--stack", "nope"]) == 2
    assert "is --stack right?" in capsys.readouterr().err


def test_every_redrive_and_purge_is_in_the_audit_log_under_the_operators_iam_id(queues, capsys):
    # Given the stack's audit table
    from support.template import create_table

    create_table(boto3.client("dynamodb"), "AuditTable", "tidings-dev-AuditTable-9Z8Y7X")
    _sqs, dlq, _retry = queues
    # When an operator redrives five messages, then purges the rest
    main(["dlq", "redrive", "email", "--stack", "tidings-dev", "--max", "5", "--json"])
    assert main(["dlq", "purge", "email", "--stack", "tidings-dev", "--yes", "--json"]) == 0
    capsys.readouterr()
    # Then what did this operator do today? Both actions, with their counts and the queue
    operator = "iam:" + boto3.client("sts").get_caller_identity()["UserId"].split(":")[0]
    assert main(["audit", "--subject", operator, "--stack", "tidings-dev", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["action"], r["actor"], r["target_kind"]) for r in records] == [
        ("dlq.redrive", "operator", "queue"),
        ("dlq.purge", "operator", "queue"),
    ]
    assert records[0]["target_id"] == dlq.rsplit("/", 1)[-1]
    assert records[0]["details"]["moved"] == 5
    assert records[1]["details"]["purged"] == 7
    # And the table view shows them too
    assert main(["audit", "--subject", operator, "--stack", "tidings-dev"]) == 0
    assert "dlq.purge" in capsys.readouterr().out


def test_an_operator_action_without_an_audit_table_still_happens_and_says_so(queues, capsys):
    sqs, dlq, _retry = queues
    assert main(["dlq", "purge", "email", "--stack", "tidings-dev", "--yes", "--json"]) == 0
    assert "audit record of dlq.purge could not be written" in capsys.readouterr().err
    assert count(sqs, dlq) == 0
