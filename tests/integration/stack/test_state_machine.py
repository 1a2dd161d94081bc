"""The fixture's state machine on moto's ASL interpreter: Retry on a typed errorType, Catch into SQS."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tidings_local.stack.system import LocalSystem

pytestmark = pytest.mark.integration


def _run(
    system: LocalSystem, wait_for, payload: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    sfn = system.boto3_client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=system.physical_id("ProbeStateMachine"),
        name=f"probe-{uuid.uuid4().hex[:12]}",
        input=json.dumps(payload),
    )["executionArn"]

    def finished() -> dict[str, Any] | None:
        execution = sfn.describe_execution(executionArn=arn)
        return execution if execution["status"] != "RUNNING" else None

    execution = wait_for(finished, timeout=60)
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return execution, history


def _failures(history: list[dict[str, Any]]) -> list[str]:
    return [e["taskFailedEventDetails"]["error"] for e in history if e["type"] == "TaskFailed"]


def test_a_typed_transient_error_is_retried_then_succeeds(probe_system: LocalSystem, wait_for) -> None:
    # Given a probe that fails once with RateLimited
    payload = {"attempt_key": f"retry-{uuid.uuid4()}", "fail_times": 1}

    # When the state machine runs it
    execution, history = _run(probe_system, wait_for, payload)

    # Then the Retry on "RateLimited" matched the handler's errorType and the second attempt succeeded
    assert execution["status"] == "SUCCEEDED"
    assert _failures(history) == ["RateLimited"]
    output = json.loads(execution["output"])
    assert output["InvokeProbeResult"]["probe"]["event"]["attempt_key"] == payload["attempt_key"]


def test_exhausted_retries_are_caught_into_the_failure_queue(probe_system: LocalSystem, wait_for) -> None:
    # Given a probe that keeps failing (RetryMaxAttempts is 2: three attempts in all)
    key = f"exhaust-{uuid.uuid4()}"
    execution, history = _run(probe_system, wait_for, {"attempt_key": key, "fail_times": 10})

    # Then the execution failed through the Catch and the error was parked on the queue
    assert execution["status"] == "FAILED"
    assert _failures(history) == ["RateLimited"] * 3
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if e["type"] == "TaskStateEntered"]
    assert entered == ["InvokeProbe", "ParkFailure"]
    message = _receive_one(probe_system, "FailureQueue")
    assert message["Error"] == "RateLimited"


def test_a_permanent_error_is_not_retried(probe_system: LocalSystem, wait_for) -> None:
    execution, history = _run(probe_system, wait_for, {"raise": "PaymentDeclined"})
    assert execution["status"] == "FAILED"
    assert _failures(history) == ["PaymentDeclined"]
    assert _receive_one(probe_system, "FailureQueue")["Error"] == "PaymentDeclined"


def _receive_one(system: LocalSystem, queue_logical_id: str) -> dict[str, Any]:
    sqs = system.boto3_client("sqs")
    url = system.physical_id(queue_logical_id)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
        "Messages", []
    )
    assert len(messages) == 1
    sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
    return json.loads(messages[0]["Body"])
