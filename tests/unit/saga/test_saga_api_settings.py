"""The notify API's settings: validated at cold start, a bad variable named in the error."""

import importlib.util

import pytest
from support.template import ROOT

from tidings.api.settings import ApiSettings, ServiceSettings, load
from tidings.config import ConfigurationError

pytestmark = pytest.mark.unit

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:saga"
BASE = {
    "NOTIFICATIONS_TABLE": "notifications",
    "IDEMPOTENCY_TABLE": "idempotency",
    "STATE_MACHINE_ARN": ARN,
    "AUDIT_TABLE": "audit",
}


def test_defaults_apply_when_only_the_required_settings_are_given():
    settings = load(ApiSettings, BASE)
    assert (settings.max_request_bytes, settings.max_bulk_items) == (256 * 1024, 5000)
    assert settings.idempotency_ttl_seconds == 24 * 3600
    assert settings.bulk_queue_url is None


def test_a_missing_setting_is_named():
    environ = {key: value for key, value in BASE.items() if key != "STATE_MACHINE_ARN"}
    with pytest.raises(ConfigurationError, match="STATE_MACHINE_ARN"):
        load(ApiSettings, environ)


def test_every_bad_setting_is_named_and_its_value_is_not_repeated():
    environ = {**BASE, "MAX_BULK_ITEMS": "lots", "IDEMPOTENCY_TTL_SECONDS": "-1", "STATE_MACHINE_ARN": "saga"}
    with pytest.raises(ConfigurationError) as raised:
        load(ApiSettings, environ)
    message = str(raised.value)
    for variable in ("MAX_BULK_ITEMS", "IDEMPOTENCY_TTL_SECONDS", "STATE_MACHINE_ARN"):
        assert variable in message
    assert "lots" not in message


def test_an_empty_value_means_not_set():
    assert load(ServiceSettings, {**BASE, "BULK_QUEUE_URL": ""}).bulk_queue_url is None


def test_the_handler_fails_its_cold_start_naming_the_bad_variable(monkeypatch):
    for key, value in BASE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MAX_REQUEST_BYTES", "0")
    spec = importlib.util.spec_from_file_location("notify_api_cold", ROOT / "functions/notify_api/app.py")
    with pytest.raises(ConfigurationError, match="MAX_REQUEST_BYTES"):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
