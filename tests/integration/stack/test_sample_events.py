"""Every events/ sample works with `tidings local invoke` on a freshly seeded stack, with a meaningful result.

Each sample runs through the CLI's own code (``tidings_local.cli.main``) in this process: it parses the
arguments, reads the event, checks the function id, invokes it once and prints only the result. The
stack it would deploy is deployed once for the module and brought back to the state a fresh stack has
(no execution running, tables holding exactly ``events/seed/notifications.json``, queues empty, sandboxes
as started and seeded) before every sample; the CLI is checked to ask for exactly that stack. One sample
also runs as a real ``tidings local invoke`` subprocess, deploying its own stack, as a person (or CI)
runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tidings_local.cli import main as tidings
from tidings_local.stack import system as local_system
from tidings_local.stack.seed import apply_seed, load_seed
from tidings_local.stack.system import LocalSystem

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
EVENTS = ROOT / "events"
#: events/ files that are not events: `--env-vars` for the webhook samples (their signatures are old).
NOT_EVENTS = {"webhook_receiver_env.json"}
WEBHOOK_ENV = EVENTS / "webhook_receiver_env.json"
SEED = EVENTS / "seed" / "notifications.json"
SEEDED_NOTIFICATION = "011f9926-62c3-5101-bdee-9d1be9e1b669"  # order-1001 of client local-user

Check = Callable[[Any, str], None]


def _body(result: dict[str, Any]) -> Any:
    return json.loads(result["body"])


def _no_failed_records(result: Any, _logs: str) -> None:
    assert result == {"batchItemFailures": []}


def _charged(result: Any, _logs: str) -> None:
    assert result["status"] == "succeeded"
    assert result["payment_intent_id"].startswith("pi_")


def _waiting(result: Any, logs: str) -> None:
    # The task token is kept on the seeded notification for the Stripe webhook to resume the saga
    assert result == {"waiting": True}
    assert "payment waits for customer action" in logs


def _waiting_for_reconciliation(result: Any, logs: str) -> None:
    # The task token is kept on the seeded notification for ReconcilePayment to resume the saga
    assert result == {"waiting": True}
    assert "uncertain charge waits for reconciliation" in logs


def _cancelled(result: Any, _logs: str) -> None:
    assert result == {"outcome": "cancelled", "payment_intent_id": "pi_3PexampleThreeDSecure"}


def _refunded(result: Any, _logs: str) -> None:
    assert result["refund_id"].startswith("re_")
    assert result["status"] == "succeeded"


def _sent_by(provider: str) -> Check:
    def check(result: Any, _logs: str) -> None:
        assert result["provider"] == provider
        assert result["provider_message_id"]
        assert result["deduplicated"] is False

    return check


def _finished(status: str) -> Check:
    def check(result: Any, _logs: str) -> None:
        assert result["notification_id"] == SEEDED_NOTIFICATION
        assert result["status"] == status

    return check


def _bulk_accepted(result: Any, _logs: str) -> None:
    assert result["statusCode"] == 202
    body = _body(result)
    assert body["accepted"] >= 1
    assert body["status_url"] == f"/notifications/bulk/{body['bulk_id']}"


def _created(result: Any, _logs: str) -> None:
    assert result["statusCode"] in (200, 202)
    assert _body(result)["notification_id"] == SEEDED_NOTIFICATION


def _invalid(result: Any, _logs: str) -> None:
    assert result["statusCode"] == 422
    body = _body(result)
    assert body["code"] == "validation_error"
    assert body["errors"]


def _status_read(result: Any, _logs: str) -> None:
    assert result["statusCode"] == 200
    body = _body(result)
    assert body["notification_id"] == SEEDED_NOTIFICATION
    assert body["order_reference"] == "order-1001"
    assert "ada@example.com" not in result["body"]  # contact details are masked


def _openapi(result: Any, _logs: str) -> None:
    assert result["statusCode"] == 200
    document = _body(result)
    assert document["openapi"].startswith("3.")
    assert "/notifications" in document["paths"]


def _webhook_applied(result: Any, logs: str) -> None:
    assert result == {"batchItemFailures": []}
    # Correlated with the seeded notification, so recorded rather than dropped as "uncorrelated"
    applied = [line for line in logs.splitlines() if "webhook applied" in line]
    assert applied
    assert all("recorded" in line and "uncorrelated" not in line for line in applied)


def _acknowledged(result: Any, _logs: str) -> None:
    assert 200 <= result["statusCode"] < 300, result


def _published(result: Any, logs: str) -> None:
    # The e-mail's delivered status: one event on the bus (no callback: the stack has no default URL)
    assert result == {"events": 1, "callbacks": 0}
    assert "status events published" in logs


def _callback_retried(result: Any, logs: str) -> None:
    # Nothing listens at the sample's URL: the try fails and the message is put off for the next one
    assert result == {"batchItemFailures": [{"itemIdentifier": "00000000-0000-0000-0000-000000000001"}]}
    assert "callback failed: tried again later" in logs


def _swept(result: Any, logs: str) -> None:
    # A fresh stack runs no saga: nothing is late, and the count is published as an EMF metric
    assert result == {"running": 0, "not_final": 0, "oldest_age_seconds": 0.0}
    assert '"SagasNotFinal":0' in logs


def _nothing_to_repair(result: Any, logs: str) -> None:
    # The seeded notifications are older than the lookback: nothing to repair, and zero is published
    assert result == {
        "sagas_started": 0,
        "stripe_events_refetched": 0,
        "deliveries_updated": 0,
        "deliveries_unknown": 0,
        "checks_failed": 0,
    }
    assert '"ReconcileRepairs":[0.0]' in logs


#: events/<file> -> (function logical id, what its result must show)
SAMPLES: dict[str, tuple[str, Check]] = {
    "await_charge_reconciliation.json": ("AwaitChargeReconciliationFunction", _waiting_for_reconciliation),
    "await_payment_action.json": ("AwaitPaymentActionFunction", _waiting),
    "cancel_payment.json": ("CancelPaymentFunction", _cancelled),
    "charge_payment.json": ("ChargePaymentFunction", _charged),
    "notify_api_bulk.json": ("NotifyApiFunction", _bulk_accepted),
    "notify_api_create.json": ("NotifyApiFunction", _created),
    "notify_api_create_invalid.json": ("NotifyApiFunction", _invalid),
    "notify_api_get.json": ("NotifyApiFunction", _status_read),
    "notify_api_openapi.json": ("NotifyApiFunction", _openapi),
    "reconcile_payment_refund.json": ("ReconcilePaymentFunction", _no_failed_records),
    "reconcile_sweep.json": ("ReconcileSweepFunction", _nothing_to_repair),
    "record_outcome_compensated.json": ("RecordOutcomeFunction", _finished("compensated")),
    "record_outcome_delivered.json": ("RecordOutcomeFunction", _finished("delivered")),
    "publish_status_events.json": ("PublishStatusEventsFunction", _published),
    "refund_payment.json": ("RefundPaymentFunction", _refunded),
    "retry_delivery_email.json": ("RetryDeliveryFunction", _no_failed_records),
    "retry_delivery_sms.json": ("RetryDeliveryFunction", _no_failed_records),
    "send_callback.json": ("SendCallbackFunction", _callback_retried),
    "send_email_sendgrid.json": ("SendEmailFunction", _sent_by("sendgrid")),
    "send_email_ses.json": ("SendEmailFunction", _sent_by("ses")),
    "send_sms_sns.json": ("SendSmsFunction", _sent_by("sns")),
    "send_sms_twilio.json": ("SendSmsFunction", _sent_by("twilio")),
    "start_bulk.json": ("StartBulkFunction", _no_failed_records),
    "sweep_sagas.json": ("SweepSagasFunction", _swept),
    "webhook_processor_sqs.json": ("WebhookProcessorFunction", _webhook_applied),
    "webhook_receiver_sendgrid.json": ("WebhookReceiverFunction", _acknowledged),
    "webhook_receiver_stripe.json": ("WebhookReceiverFunction", _acknowledged),
    "webhook_receiver_twilio.json": ("WebhookReceiverFunction", _acknowledged),
}


def _invoke_args(name: str) -> list[str]:
    logical_id, _check = SAMPLES[name]
    args = ["local", "invoke", logical_id, "-e", str(EVENTS / name), "-t", str(ROOT / "template.yaml")]
    if logical_id == "WebhookReceiverFunction":
        args += ["-n", str(WEBHOOK_ENV)]
    return args


def test_every_event_file_is_mapped_to_a_function() -> None:
    # A new events/ file must be added to SAMPLES (with what its result must show)
    event_files = {path.name for path in EVENTS.glob("*.json")} - NOT_EVENTS
    assert event_files == set(SAMPLES)


class _Borrowed:
    """The module's stack lent to one CLI run: ``with system:`` in the CLI must not stop it."""

    def __init__(self, system: LocalSystem) -> None:
        self._system = system

    def __getattr__(self, name: str) -> Any:
        return getattr(self._system, name)

    def __enter__(self) -> _Borrowed:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.fixture(scope="module")
def seeded_stack() -> Iterator[LocalSystem]:
    """The stack `tidings local invoke` deploys for a sample (sandboxes, seed, no pollers, no API), once;
    the webhook samples' --env-vars only concern WebhookReceiverFunction, which no other sample invokes."""
    with LocalSystem.start(
        ROOT / "template.yaml",
        pollers=False,
        serve_api=False,
        function_env=json.loads(WEBHOOK_ENV.read_text()),
        seed=SEED,
    ) as system:
        yield system


def _stop_executions(system: LocalSystem) -> None:
    """Stop what a sample's saga executions still do (a fresh stack runs none), and wait until no
    function is busy any more, so nothing writes behind the next sample's back."""
    sfn = system.boto3_client("stepfunctions")
    for machine in sfn.list_state_machines()["stateMachines"]:
        running = sfn.list_executions(stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING")
        for execution in running["executions"]:
            sfn.stop_execution(executionArn=execution["executionArn"])
    assert system.runtime is not None
    pools = [system.runtime.pool(logical_id) for logical_id in system.runtime.specs]
    deadline = time.monotonic() + 60
    while any(pool._count > len(pool._idle) for pool in pools):  # an invocation still in flight
        assert time.monotonic() < deadline, "a function was still busy 60 s after its execution stopped"
        time.sleep(0.05)


def _back_to_a_fresh_seeded_stack(system: LocalSystem) -> None:
    _stop_executions(system)
    for sandbox in system.sandboxes.values():
        sandbox.control.reset()
    assert system.stack is not None
    dynamodb = system.boto3_client("dynamodb")
    for deployed in system.stack.of_type("AWS::DynamoDB::Table").values():
        keys = [
            k["AttributeName"] for k in dynamodb.describe_table(TableName=deployed.ref)["Table"]["KeySchema"]
        ]
        for page in dynamodb.get_paginator("scan").paginate(TableName=deployed.ref):
            for item in page["Items"]:
                dynamodb.delete_item(TableName=deployed.ref, Key={k: item[k] for k in keys})
    sqs = system.boto3_client("sqs")
    for deployed in system.stack.of_type("AWS::SQS::Queue").values():
        sqs.purge_queue(QueueUrl=deployed.ref)  # moto's in this process: its once-a-minute rule is off
    apply_seed(system, load_seed(SEED))


@pytest.fixture
def fresh_stack(seeded_stack: LocalSystem, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The module's stack, as a fresh seeded one, handed to the CLI when it starts its stack; the
    options each start asked for are recorded."""
    monkeypatch.setenv("MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR", "false")
    _back_to_a_fresh_seeded_stack(seeded_stack)
    asked: list[dict[str, Any]] = []

    def start(**options: Any) -> _Borrowed:
        asked.append(options)
        return _Borrowed(seeded_stack)

    monkeypatch.setattr(local_system.LocalSystem, "start", start)
    return asked


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_event_gives_a_meaningful_result(
    name: str, fresh_stack: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a fresh local stack seeded with the samples' notifications
    # When the sample is invoked as `tidings local invoke <Id> -e events/<name>` does it
    exit_code = tidings(_invoke_args(name))

    # Then the CLI asked for the stack the sample got (the template's, seeded, sandboxes on)
    webhook = SAMPLES[name][0] == "WebhookReceiverFunction"
    assert fresh_stack == [
        {
            "template": ROOT / "template.yaml",
            "overrides": {},
            "function_env": json.loads(WEBHOOK_ENV.read_text()) if webhook else {},
            "sandboxes": True,
            "pollers": False,
            "serve_api": False,
            "seed": SEED,
        }
    ]
    # and stdout holds only the handler's result, and the result shows the step really acted
    out, err = capsys.readouterr()
    assert exit_code == 0, err
    assert out.count("\n") == 1, out
    result = json.loads(out)
    assert not (isinstance(result, dict) and "errorType" in result), result
    SAMPLES[name][1](result, err)


def test_invoke_in_its_own_process_prints_only_the_result(tmp_path: Path) -> None:
    # Given the bulk consumer's sample, whose saga executions keep running while the stack stops
    # When it runs as a person runs it, from another directory
    done = subprocess.run(
        [sys.executable, "-m", "tidings_local.cli", *_invoke_args("start_bulk.json")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    # Then stdout is the handler's result alone (moto's stray prints went to stderr)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1, done.stdout
    assert json.loads(done.stdout) == {"batchItemFailures": []}
