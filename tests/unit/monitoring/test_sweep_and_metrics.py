"""The not-final sweeper counts late sagas from Step Functions, and provider metrics are published per
provider as well as per endpoint (what the alarms read)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from tidings.observability import emit_metric
from tidings.saga.sweep import publish, running_executions, sweep

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _emf(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if '"_aws"' in line]


def test_only_sagas_older_than_the_limit_count_as_not_final():
    executions = [
        {"name": "n-fresh", "startDate": NOW - timedelta(minutes=5)},
        {"name": "n-late", "startDate": NOW - timedelta(minutes=31)},
        {"name": "n-later", "startDate": NOW - timedelta(hours=2)},
    ]
    result = sweep(executions, NOW, not_final_after_seconds=30 * 60)
    assert result.running == 3
    assert result.not_final == 2
    assert result.oldest_age_seconds == 7200.0
    assert result.sample == ("n-late", "n-later")


def test_no_running_saga_is_zero_not_missing(capsys):
    # Zero is published, so the alarm goes back to OK instead of lingering on missing data
    publish(sweep([], NOW, 60))
    values = {
        name: record[name]
        for record in _emf(capsys.readouterr().out)
        for name in ("SagasNotFinal",)
        if name in record
    }
    assert values == {"SagasNotFinal": 0}


def test_running_executions_come_from_step_functions(moto_aws):
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="saga",
        definition=json.dumps(
            {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 60, "End": True}}}
        ),
        roleArn="arn:aws:iam::123456789012:role/saga",
    )["stateMachineArn"]
    sfn.start_execution(stateMachineArn=arn, name="n-1")
    sfn.start_execution(stateMachineArn=arn, name="n-2")
    names = sorted(e["name"] for e in running_executions(sfn, arn))
    assert names == ["n-1", "n-2"]


def test_a_provider_metric_is_also_published_per_provider_and_per_category(capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Tidings")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "tidings")
    emit_metric(
        "ProviderCallFailed", provider="stripe", endpoint="create_payment_intent", category="unavailable"
    )
    (record,) = _emf(capsys.readouterr().out)
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Tidings"
    assert directive["Dimensions"] == [
        ["service", "provider", "endpoint", "category"],
        ["service", "provider"],
        ["service", "provider", "category"],
    ]
    assert directive["Metrics"] == [{"Name": "ProviderCallFailed", "Unit": "Count"}]
    assert record["ProviderCallFailed"] == 1
    assert (record["service"], record["provider"], record["category"]) == ("tidings", "stripe", "unavailable")


def test_a_metric_without_a_provider_has_one_dimension_set(capsys):
    emit_metric("SagasNotFinal", value=3)
    (record,) = _emf(capsys.readouterr().out)
    assert record["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert record["SagasNotFinal"] == 3
