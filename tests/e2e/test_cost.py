"""`tidings cost` on a local run of mixed outcomes: its figures are recomputed here, independently, from
the execution histories, the sandboxes' request logs and the price file."""

import json
import math
import tomllib

import pytest
from support.e2e import order_body

from tidings_local.cost import DEFAULT_PRICES, load_prices
from tidings_local.cost.cli import collect
from tidings_local.cost.report import render, summarize

pytestmark = pytest.mark.e2e


def _history(sfn, arn):
    events = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        events += page["events"]
    return events


def _expected_aws(events, memory_mb, prices):
    """Transitions: states entered plus task retries; Lambda: attempts and their billed GB-seconds."""
    entered = [e for e in events if e["type"].endswith("StateEntered")]
    scheduled = [e for e in events if e["type"] == "TaskScheduled"]
    task_entries = [e for e in events if e["type"] == "TaskStateEntered"]
    transitions = len(entered) + (len(scheduled) - len(task_entries))
    lambdas = [e for e in scheduled if e["taskScheduledEventDetails"]["resourceType"] == "lambda"]
    gb_seconds = 0.0
    start = None
    for event in events:
        if event["type"] == "TaskScheduled":
            is_lambda = event["taskScheduledEventDetails"]["resourceType"] == "lambda"
        if event["type"] == "TaskStarted":
            start = event["timestamp"]
        if event["type"] in ("TaskSucceeded", "TaskFailed", "TaskTimedOut") and start is not None:
            if is_lambda:
                gb_seconds += (
                    math.ceil((event["timestamp"] - start).total_seconds() * 1000) / 1000 * memory_mb / 1024
                )
            start = None
    sqs = len(scheduled) - len(lambdas)
    return (
        transitions * prices["stepfunctions"]["transition"]
        + len(lambdas) * prices["lambda"]["request"]
        + gb_seconds * prices["lambda"]["gb_second"]
        + sqs * prices["sqs"]["request"]
        + (len(lambdas) + 1) * prices["dynamodb"]["write_unit"]
        + len(lambdas) * prices["dynamodb"]["read_unit"]
    )


def test_cost_figures_match_a_recomputation_from_histories_and_request_logs(system, saga):
    # Given four sagas: delivered, declined, the receipt via SES, and the SMS via SNS
    happy = _run(saga, order_body())
    declined = _run(saga, order_body(payment={"payment_method": "pm_card_chargeDeclined"}))
    system.sandboxes["sendgrid"].control.inject_fault("outage")
    fallback = _run(saga, order_body())
    system.sandboxes["sendgrid"].control.clear_faults()
    system.sandboxes["twilio"].control.inject_fault("outage")
    sms_fallback = _run(saga, order_body())
    system.sandboxes["twilio"].control.clear_faults()
    assert [happy["status"], declined["status"], fallback["status"], sms_fallback["status"]] == [
        "delivered",
        "payment_declined",
        "delivered_with_fallback",
        "delivered_with_fallback",
    ]
    assert fallback["channels"]["email"]["provider"] == "ses"
    assert sms_fallback["channels"]["sms"]["provider"] == "sns"
    ids = {r["notification_id"]: r for r in (happy, declined, fallback, sms_fallback)}

    # When `tidings cost` collects and prices them
    sfn = system.boto3_client("stepfunctions")
    requests = {name: system.sandboxes[name].control.requests() for name in ("stripe", "sendgrid", "twilio")}
    units = [
        u
        for u in collect(
            sfn, system.boto3_client("lambda"), system.physical_id("NotificationSagaStateMachine"), requests
        )
        if u.notification_id in ids
    ]
    summary = summarize(units, load_prices())
    print(render(summary))
    for row in summary["units"]:  # the measured units per path (docs/costs.md)
        print(row["status"], row["transitions"], row["task_retries"], row["lambda_invocations"])
    by_id = {u["notification_id"]: u for u in summary["units"]}
    assert set(by_id) == set(ids)

    # Then each saga's cost is what the histories, the request logs and the prices say
    prices = tomllib.loads(DEFAULT_PRICES.read_text())
    total = 0.0
    fees = {}
    for notification_id, result in ids.items():
        events = _history(sfn, result["execution_arn"])
        expected = _expected_aws(events, 512, prices)  # every saga function runs with the Globals' 512 MB
        fees[notification_id] = 0.0
        intents = [
            r
            for r in _mine(requests, notification_id, "stripe", "/v1/payment_intents")
            if r["method"] == "POST"
        ]
        if result["status"] != "payment_declined":
            amount = int(intents[0]["form"]["amount"])
            fees[notification_id] = (
                amount / 100 * prices["stripe"]["percent"] / 100 + prices["stripe"]["fixed_fee"]
            )
            expected += fees[notification_id]
        sent = [
            r for r in _mine(requests, notification_id, "sendgrid", "/v3/mail/send") if r["status"] == 202
        ]
        expected += len(sent) * prices["sendgrid"]["email"]
        texts = [
            r for r in _mine(requests, notification_id, "twilio", "/Messages.json") if r["status"] == 201
        ]
        expected += sum(prices["twilio"]["segment_default"] for _ in texts)  # one segment each (short text)
        if result["channels"]["email"].get("provider") == "ses":
            assert not sent
            expected += prices["ses"]["email"]
        if result["channels"]["sms"].get("provider") == "sns":
            assert not texts
            expected += prices["sns"]["segment_default"]
        assert sum(summary_item for summary_item in _items(summary, notification_id)) == pytest.approx(
            expected
        )
        total += expected
        fees[notification_id] = expected - fees[notification_id]  # from here on: the cost without the fee
    assert summary["total"] == pytest.approx(total)
    assert summary["per_1000_sagas"] == pytest.approx(1000 * total / 4)
    assert summary["by_status"]["payment_declined"]["sagas"] == 1
    # The declined card paid no Stripe fee and sent nothing
    declined_units = by_id[declined["notification_id"]]
    assert declined_units["charged_amount"] is None
    assert declined_units["sendgrid_emails"] == declined_units["ses_emails"] == 0
    # The premium is what the fallback sagas cost beyond the plain delivered one (SES and SNS are the
    # cheaper channels, so the extra transitions and invocations may or may not outweigh them)
    assert summary["sagas_with_fallback_or_retry"] == 2
    assert summary["fallback_and_retry_premium"] == pytest.approx(
        fees[fallback["notification_id"]]
        + fees[sms_fallback["notification_id"]]
        - 2 * fees[happy["notification_id"]]
    )


def _run(saga, body):
    # A saga on a busy shared machine can take longer than the client's default minute
    response = saga.notify(body)
    assert response.status_code == 202, response.text
    return saga.wait_for(response.json()["notification_id"], timeout=240)


def _mine(requests, notification_id, provider, path):
    return [r for r in requests[provider] if notification_id in json.dumps(r) and r["path"].endswith(path)]


def _items(summary, notification_id):
    from tidings_local.cost.report import SagaUnits, price

    (units,) = [u for u in summary["units"] if u["notification_id"] == notification_id]
    saga = SagaUnits(**{k: v for k, v in units.items() if k != "twilio_segments"})
    saga.twilio_segments = [tuple(s) for s in units["twilio_segments"]]
    return price(saga, load_prices()).by_item.values()
