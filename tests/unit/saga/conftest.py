"""Fixtures for the saga's unit tests (helpers live in tests/support/saga.py)."""

import pytest
from moto import mock_aws
from support.saga import FakeChannel, FakeGateway, create_table_from_template

from tidings.notifications.store import NotificationStore
from tidings.saga.steps import SagaSteps


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def store(aws) -> NotificationStore:
    return NotificationStore(create_table_from_template("NotificationsTable", "notifications"))


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def channels() -> dict[str, FakeChannel]:
    return {name: FakeChannel(name) for name in ("sendgrid", "ses", "twilio", "sns")}


@pytest.fixture
def steps(store, gateway, channels) -> SagaSteps:
    return SagaSteps(
        store=store,
        payment_gateway=lambda: gateway,
        email_channel=lambda name: channels[name],
        sms_channel=lambda name: channels[name],
    )
