"""The local stand-in for CloudWatch's part: EMF lines become moto metrics, and an alarm's metric math
is computed over a window as CloudWatch would for one period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from tidings.observability import emit_metric
from tidings_local.alarms import alarm_value, breaching, emf_data, evaluate, publish_emf

pytestmark = pytest.mark.unit


def test_fill_and_if_follow_cloudwatch_metric_math():
    rate = (
        "IF(FILL(failed, 0) + FILL(ok, 0) >= 10, 100 * FILL(failed, 0) / (FILL(failed, 0) + FILL(ok, 0)), 0)"
    )
    assert evaluate(rate, {"failed": 3.0, "ok": 9.0}) == 25.0
    assert evaluate(rate, {"failed": 3.0, "ok": None}) == 0.0  # under the minimum number of calls
    assert evaluate(rate, {"failed": None, "ok": 12.0}) == 0.0
    assert evaluate("100 * remaining / 25", {"remaining": 5.0}) == 20.0
    assert evaluate("100 * remaining / 25", {"remaining": None}) is None  # no data stays no data


def test_unsupported_math_is_refused_rather_than_guessed():
    with pytest.raises(ValueError, match="not supported"):
        evaluate("ANOMALY_DETECTION_BAND(m, 2)", {"m": 1.0})


def test_emf_lines_become_one_datum_per_dimension_set(capsys):
    emit_metric("ProviderCallFailed", provider="stripe", endpoint="create_payment_intent", category="timeout")
    data = emf_data(capsys.readouterr().out.splitlines())
    assert {d.dimensions for d in data} == {
        (
            ("service", "tidings"),
            ("provider", "stripe"),
            ("endpoint", "create_payment_intent"),
            ("category", "timeout"),
        ),
        (("service", "tidings"), ("provider", "stripe")),
        (("service", "tidings"), ("provider", "stripe"), ("category", "timeout")),
    }
    assert {d.value for d in data} == {1.0}


def test_an_error_rate_alarm_read_back_from_moto(moto_aws, capsys):
    # Given 6 failed and 2 succeeded Stripe calls, published as CloudWatch Logs publishes EMF
    start = datetime.now(UTC) - timedelta(seconds=5)
    for _ in range(6):
        emit_metric(
            "ProviderCallFailed", provider="stripe", endpoint="create_payment_intent", category="unavailable"
        )
    for _ in range(2):
        emit_metric("ProviderCallSucceeded", provider="stripe", endpoint="create_payment_intent")
    emit_metric("ProviderCallFailed", provider="sendgrid", endpoint="mail_send", category="unavailable")
    cloudwatch = boto3.client("cloudwatch")
    assert publish_emf(cloudwatch, capsys.readouterr().out.splitlines()) == 3 * 6 + 2 * 2 + 3
    end = datetime.now(UTC) + timedelta(seconds=5)

    def stat(metric_id, name):
        dims = [{"Name": "service", "Value": "tidings"}, {"Name": "provider", "Value": "stripe"}]
        metric = {"Namespace": "Tidings", "MetricName": name, "Dimensions": dims}
        return {
            "Id": metric_id,
            "MetricStat": {"Metric": metric, "Period": 300, "Stat": "Sum"},
            "ReturnData": False,
        }

    cloudwatch.put_metric_alarm(
        AlarmName="stripe-error-rate",
        Metrics=[
            stat("failed", "ProviderCallFailed"),
            stat("succeeded", "ProviderCallSucceeded"),
            {
                "Id": "rate",
                "Expression": "IF(FILL(failed, 0) + FILL(succeeded, 0) >= 5, "
                "100 * FILL(failed, 0) / (FILL(failed, 0) + FILL(succeeded, 0)), 0)",
                "ReturnData": True,
            },
        ],
        EvaluationPeriods=1,
        Threshold=20,
        ComparisonOperator="GreaterThanThreshold",
    )
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=["stripe-error-rate"])["MetricAlarms"]
    # When its value is computed over the window / Then it is Stripe's rate alone, and it breaches
    assert alarm_value(cloudwatch, alarm, start, end) == 75.0
    assert breaching(alarm, 75.0)
    # And a window with no data is missing data, which does not breach
    later = end + timedelta(minutes=10)
    assert breaching(alarm, alarm_value(cloudwatch, alarm, later, later + timedelta(minutes=5))) is False
