"""The saga's dead-letter bodies on moto's ASL interpreter: a caught function error reaches the queue as
its type and message only, never with the Lambda runtime's stack trace.

The states run are the definition's own (`tidings.saga.definition.build`): the shaping of each parked
step's error and its park state, fed the error a Catch writes, and the body read back from SQS.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import pytest

from tidings.saga import definition
from tidings.saga import result_paths as paths

pytestmark = pytest.mark.integration

REGION = "us-east-1"
#: What the Python runtime reports for an exception a handler let escape, as Step Functions' Cause.
FUNCTION_ERROR = {
    "Error": "ProviderUnavailable",
    "Cause": json.dumps(
        {
            "errorMessage": "stripe: refund failed status=503 code=api_error",
            "errorType": "ProviderUnavailable",
            "requestId": "0d1c8c1e-5f43-4d0e-9a57-5c1f0f8c2b9e",
            "stackTrace": [
                '  File "/var/task/app.py", line 30, in lambda_handler\n    return refund(event)\n',
                '  File "/opt/python/tidings/saga/steps.py", line 200, in refund\n    raise error\n',
            ],
        }
    ),
}
#: A Lambda service error after its retries: text, no stack trace.
SERVICE_ERROR = {"Error": "Lambda.ServiceException", "Cause": "Lambda is unavailable (Service: Lambda)"}

#: Each parked step: the step whose caught error the body carries, its park state and its queue.
PARKED = [
    pytest.param(
        paths.REFUND_PAYMENT, paths.PARK_REFUND, "CompensationDeadLetterQueueUrl", "error", id="refund"
    ),
    pytest.param(
        paths.CANCEL_PAYMENT, paths.PARK_CANCELLATION, "CompensationDeadLetterQueueUrl", "error", id="cancel"
    ),
    pytest.param(paths.EMAIL.fallback, paths.EMAIL.park, "EmailDeadLetterQueueUrl", "error", id="email"),
    pytest.param(
        paths.CHARGE_PAYMENT,
        paths.PARK_UNCERTAIN_CHARGE,
        "CompensationDeadLetterQueueUrl",
        "detail",
        id="charge",
    ),
]


def _machine(caught: paths.Step, park: paths.Step, queue_setting: str, queue_url: str) -> dict[str, Any]:
    """The definition's shaping and park states for ``caught``, entered as its Catch enters them."""
    states = definition.build()["States"]
    read = definition.read_error_state(caught)
    names = (read, f"Parse{caught.state}ErrorCause", f"Keep{caught.state}ErrorMessage")
    shaping = {name: states[name] for name in names}
    parked = json.loads(json.dumps(states[park.state]).replace(definition.arn(queue_setting), queue_url))
    parked["Next"] = "Done"
    return {
        "StartAt": read,
        "States": shaping | {park.state: parked, "Done": {"Type": "Succeed"}},
    }


def _park(
    machine: dict[str, Any], caught: paths.Step, error: dict[str, Any], queue_url: str
) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.create_state_machine(
        name=f"park-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(machine),
        roleArn="arn:aws:iam::123456789012:role/saga",
    )["stateMachineArn"]
    state = paths.execution_input("n-1", {"email": "best_effort", "sms": "best_effort"}, "req-1")
    state[caught.caught] = error  # what the step's Catch writes (ResultPath)
    execution = sfn.start_execution(stateMachineArn=arn, name="park-1", input=json.dumps(state))
    deadline = time.monotonic() + 20
    while (described := sfn.describe_execution(executionArn=execution["executionArn"]))[
        "status"
    ] == "RUNNING":
        assert time.monotonic() < deadline, "the park states did not finish"
        time.sleep(0.05)
    assert described["status"] == "SUCCEEDED", described
    sqs = boto3.client("sqs", region_name=REGION)
    [message] = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    return json.loads(message["Body"])


@pytest.mark.parametrize(("caught", "park", "queue_setting", "key"), PARKED)
def test_a_function_error_reaches_the_dead_letter_body_as_its_type_and_message_only(
    moto_aws, caught, park, queue_setting, key
):
    # Given a step whose function raised, as the runtime reports it (stack trace in the Cause)
    queue_url = boto3.client("sqs", region_name=REGION).create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}")[
        "QueueUrl"
    ]
    machine = _machine(caught, park, queue_setting, queue_url)

    # When its Catch parks it
    body = _park(machine, caught, FUNCTION_ERROR, queue_url)

    # Then the body holds the error's type and message, and no trace of the stack
    error = body["error"] if key == "error" else body["detail"][caught.error]
    assert error == {
        "Error": "ProviderUnavailable",
        "Cause": "stripe: refund failed status=503 code=api_error",
    }
    text = json.dumps(body)
    assert "stackTrace" not in text
    assert "File " not in text
    assert "requestId" not in text
    # And it still names what a redrive needs
    assert body["notification_id"] == "n-1"
    assert body["request_id"] == "req-1"


@pytest.mark.parametrize(
    "error",
    [pytest.param(SERVICE_ERROR, id="text_cause"), pytest.param({"Error": "States.Timeout"}, id="no_cause")],
)
def test_an_error_without_a_function_cause_is_parked_as_it_was_caught(moto_aws, error):
    queue_url = boto3.client("sqs", region_name=REGION).create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}")[
        "QueueUrl"
    ]
    machine = _machine(paths.REFUND_PAYMENT, paths.PARK_REFUND, "CompensationDeadLetterQueueUrl", queue_url)

    body = _park(machine, paths.REFUND_PAYMENT, error, queue_url)

    assert body["error"] == error
