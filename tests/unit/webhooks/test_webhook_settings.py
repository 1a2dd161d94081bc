"""Webhook settings fail the cold start with a message naming the variable, never later."""

import pytest

from tidings.config import ConfigurationError, load
from tidings.webhooks.settings import ProcessorSettings, ReceiverSettings

pytestmark = pytest.mark.unit

RECEIVER_ENV = {
    "WEBHOOK_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/webhooks",
    "STRIPE_SIGNING_SECRET_ARN": "arn:stripe-signing",
    "SENDGRID_SIGNING_SECRET_ARN": "arn:sendgrid-signing",
    "TWILIO_SIGNING_SECRET_ARN": "arn:twilio-signing",
}


def test_receiver_defaults_to_the_providers_replay_window():
    settings = load(ReceiverSettings, RECEIVER_ENV)
    assert settings.tolerance_seconds == 300
    # The signing keys' secret, never the API credentials'
    assert settings.secret_arn("sendgrid") == "arn:sendgrid-signing"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({k: v for k, v in RECEIVER_ENV.items() if k != "WEBHOOK_QUEUE_URL"}, "WEBHOOK_QUEUE_URL"),
        ({**RECEIVER_ENV, "WEBHOOK_TOLERANCE_SECONDS": "soon"}, "WEBHOOK_TOLERANCE_SECONDS"),
        ({**RECEIVER_ENV, "WEBHOOK_TOLERANCE_SECONDS": "0"}, "WEBHOOK_TOLERANCE_SECONDS"),
    ],
)
def test_bad_receiver_setting_is_named(environ, named):
    with pytest.raises(ConfigurationError, match=named):
        load(ReceiverSettings, environ)


def test_processor_needs_its_dedupe_table():
    with pytest.raises(ConfigurationError, match="WEBHOOK_EVENTS_TABLE"):
        load(ProcessorSettings, {"NOTIFICATIONS_TABLE": "notifications"})


def test_processor_needs_its_queue_and_retries_an_event_in_flight_elsewhere_after_seconds():
    environ = {"NOTIFICATIONS_TABLE": "notifications", "WEBHOOK_EVENTS_TABLE": "events"}
    with pytest.raises(ConfigurationError, match="WEBHOOK_QUEUE_URL"):
        load(ProcessorSettings, environ)
    settings = load(ProcessorSettings, {**environ, "WEBHOOK_QUEUE_URL": RECEIVER_ENV["WEBHOOK_QUEUE_URL"]})
    assert settings.in_progress_retry_seconds == 10
    # SQS caps a visibility timeout at 12 hours
    with pytest.raises(ConfigurationError, match="WEBHOOK_IN_PROGRESS_RETRY_SECONDS"):
        load(
            ProcessorSettings,
            {**environ, "WEBHOOK_QUEUE_URL": "q", "WEBHOOK_IN_PROGRESS_RETRY_SECONDS": "43201"},
        )


def test_the_receivers_opt_outs_and_the_steps_21610_are_audited_where_an_audit_table_is_set(monkeypatch):
    from tidings.audit.suppressions import AuditedSuppressionChanges
    from tidings.suppressions.service import NoAudit, audited, get_suppression_service
    from tidings.suppressions.settings import suppression_settings
    from tidings.suppressions.store import get_suppression_store
    from tidings.webhooks.http import WebhookReceiverApi

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    env = {**RECEIVER_ENV, "SUPPRESSIONS_TABLE": "suppressions", "AUDIT_TABLE": "audit"}
    receiver = WebhookReceiverApi(load(ReceiverSettings, env))
    assert isinstance(receiver.suppressions.audit, AuditedSuppressionChanges)
    without = WebhookReceiverApi(load(ReceiverSettings, {**RECEIVER_ENV, "SUPPRESSIONS_TABLE": "s"}))
    assert isinstance(without.suppressions.audit, NoAudit)
    assert isinstance(audited(None), NoAudit)
    # The saga steps' service (Twilio's 21610) reads the same two settings
    monkeypatch.setenv("SUPPRESSIONS_TABLE", "suppressions")
    monkeypatch.setenv("AUDIT_TABLE", "audit")
    suppression_settings.cache_clear()
    get_suppression_store.cache_clear()
    try:
        assert isinstance(get_suppression_service().audit, AuditedSuppressionChanges)
    finally:
        suppression_settings.cache_clear()
        get_suppression_store.cache_clear()
