"""The state path of an execution, from its history: what the CLI prints and the console colours."""

from datetime import UTC, datetime, timedelta

import pytest

from tidings_ops.paths import state_path

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)


def history(*events):
    return [
        {"id": n, "timestamp": T0 + timedelta(seconds=n), "type": kind, **detail}
        for n, (kind, detail) in enumerate(events, 1)
    ]


def entered(name):
    return {"stateEnteredEventDetails": {"name": name}}


def exited(name):
    return {"stateExitedEventDetails": {"name": name}}


def failed(error):
    return {"taskFailedEventDetails": {"error": error}}


def test_succeeded_retried_caught_and_failed_states():
    path = state_path(
        history(
            ("ExecutionStarted", {}),
            ("TaskStateEntered", entered("ChargePayment")),
            ("TaskScheduled", {}),
            ("TaskFailed", failed("RateLimited")),
            ("TaskScheduled", {}),
            ("TaskSucceeded", {}),
            ("TaskStateExited", exited("ChargePayment")),
            ("TaskStateEntered", entered("SendReceiptEmail")),
            ("TaskScheduled", {}),
            ("TaskFailed", failed("ProviderUnavailable")),
            ("TaskStateExited", exited("SendReceiptEmail")),
            ("TaskStateEntered", entered("SendReceiptEmailViaSes")),
            ("TaskScheduled", {}),
            ("TaskSucceeded", {}),
            ("TaskStateExited", exited("SendReceiptEmailViaSes")),
            ("TaskStateEntered", entered("RecordOutcome")),
            ("TaskScheduled", {}),
            ("TaskFailed", failed("States.TaskFailed")),
            ("ExecutionFailed", {"executionFailedEventDetails": {"error": "States.TaskFailed"}}),
        )
    )
    assert [(step["state"], step["status"]) for step in path] == [
        ("ChargePayment", "retried"),
        ("SendReceiptEmail", "caught"),
        ("SendReceiptEmailViaSes", "succeeded"),
        ("RecordOutcome", "failed"),
    ]
    assert (path[0]["retries"], path[0]["errors"]) == (1, ["RateLimited"])
    assert path[1]["caught"] == "ProviderUnavailable"


def test_a_state_not_left_yet_is_running():
    [step] = state_path(history(("TaskStateEntered", entered("WaitForPaymentAction"))))
    assert (step["state"], step["status"], step["exited"]) == ("WaitForPaymentAction", "running", None)
