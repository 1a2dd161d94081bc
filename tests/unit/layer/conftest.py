"""Fixtures for the provider layer's unit tests: AWS on moto, a fake clock, and a log leak check.

Every test here runs under ``no_personal_data_in_logs``: it captures each log line the layer writes
(formatted exactly as it ships) plus everything printed (EMF metrics) and fails the test if a secret,
card number, full e-mail address or full phone number used by the tests appears in it.
"""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from support.provider_fakes import PERSONAL_VALUES, SECRET_VALUES
from support.template import create_table

from tidings.resilience.timing import FakeClock

REGION = "eu-west-1"


@pytest.fixture(autouse=True)
def no_personal_data_in_logs(log_lines, capsys, caplog):
    yield
    captured = capsys.readouterr()
    everything = "\n".join([*log_lines.lines, captured.out, captured.err, caplog.text])
    leaked = [value for value in SECRET_VALUES + PERSONAL_VALUES if value in everything]
    assert not leaked, f"sensitive values reached the logs: {[v[:4] + '...' for v in leaked]}"
    # Print it back so a failing test still shows what was logged.
    print(captured.out, end="")


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def aws():
    """moto with the layer's three state tables, as in template.yaml (partition key ``id``)."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_table(dynamodb, "CircuitBreakerTable", "breaker-table")
        create_table(dynamodb, "RateLimitTable", "rate-table")
        create_table(dynamodb, "IdempotencyTable", "idem-table")
        yield {
            "dynamodb": dynamodb,
            "secretsmanager": boto3.client("secretsmanager", region_name=REGION),
            "sesv2": boto3.client("sesv2", region_name=REGION),
            "ses": boto3.client("ses", region_name=REGION),
            "sns": boto3.client("sns", region_name=REGION),
        }
