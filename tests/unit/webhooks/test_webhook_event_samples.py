"""The signed samples in events/ stay valid: each verifies with the documented local credentials."""

import json
from pathlib import Path

import pytest

from tidings.webhooks.models import WebhookEvent
from tidings.webhooks.receiver import verify_and_normalise
from tidings.webhooks.request import WebhookRequest
from tidings_local.sandboxes import credentials

pytestmark = pytest.mark.unit

EVENTS = Path(__file__).resolve().parents[3] / "events"
SIGNED_AT = 1_767_225_600  # the samples were signed at 2026-01-01T00:00:00Z

KEYS = {
    "stripe": credentials.STRIPE_WEBHOOK_SECRET,
    "sendgrid": credentials.SENDGRID_WEBHOOK_PUBLIC_KEY,
    "twilio": credentials.TWILIO_AUTH_TOKEN,
}


@pytest.mark.parametrize(("provider", "expected"), [("stripe", 1), ("sendgrid", 2), ("twilio", 1)])
def test_receiver_sample_verifies_with_the_local_credentials(provider, expected):
    event = json.loads((EVENTS / f"webhook_receiver_{provider}.json").read_text())
    request = WebhookRequest.from_http_api_event(event)
    events = verify_and_normalise(provider, request, [KEYS[provider]], now=SIGNED_AT)
    assert len(events) == expected
    assert all(e.notification_id for e in events)


def test_receiver_env_sample_widens_the_window_only_for_the_receiver():
    env = json.loads((EVENTS / "webhook_receiver_env.json").read_text())
    assert list(env) == ["WebhookReceiverFunction"]
    assert int(env["WebhookReceiverFunction"]["WEBHOOK_TOLERANCE_SECONDS"]) > 300


def test_processor_sample_holds_valid_webhook_events():
    records = json.loads((EVENTS / "webhook_processor_sqs.json").read_text())["Records"]
    events = [WebhookEvent.model_validate_json(record["body"]) for record in records]
    assert {e.provider for e in events} == {"stripe", "twilio"}
