"""Cold start: the factories import only what the channel asked for, and never touch the network."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


pytestmark = pytest.mark.unit

SCRIPT = """
import json, sys
import httpx
from tidings.config import load_settings
from tidings.providers import get_provider_factory, get_sms_channel
from tidings.providers.factory import ProviderFactory

env = {"TWILIO_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:t", "TWILIO_API_BASE_URL": "http://127.0.0.1:9"}
get_provider_factory.cache_clear()
import tidings.providers as providers
providers.get_provider_factory = lambda: ProviderFactory(load_settings(env), credential_store=object())
channel = get_sms_channel("twilio")
loaded = sorted(m for m in sys.modules if m.startswith("tidings"))
print(json.dumps({"name": channel.name, "modules": loaded}))
"""


def test_an_sms_only_container_never_imports_stripe_or_sendgrid_code():
    # Given a fresh interpreter, as a Lambda cold start
    output = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        check=True,
        env={"AWS_DEFAULT_REGION": "eu-west-1", "PATH": ""},
    ).stdout.splitlines()[-1]
    loaded = json.loads(output)
    # When it builds the Twilio channel
    assert loaded["name"] == "twilio"
    # Then neither the Stripe nor the SendGrid client, nor the AWS fallbacks, were imported
    for module in ("tidings.providers.stripe", "tidings.providers.sendgrid", "tidings.providers.ses"):
        assert module not in loaded["modules"]
    assert "tidings.providers.twilio" in loaded["modules"]


def test_importing_the_package_imports_no_provider_code():
    output = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, tidings.providers; print(sorted(m for m in sys.modules if 'tidings' in m))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "tidings.providers.twilio" not in output
    assert "tidings.providers.factory" not in output
    assert "tidings.resilience" not in output


HANDLER_ENV = {
    "NOTIFICATIONS_TABLE": "notifications",
    "IDEMPOTENCY_TABLE": "idempotency",
    "STATE_MACHINE_ARN": "arn:aws:states:eu-west-1:123456789012:stateMachine:saga",
    "AUDIT_TABLE": "audit",
    "WEBHOOK_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/webhooks",
    "WEBHOOK_EVENTS_TABLE": "webhook-events",
    "STRIPE_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:s",
    "SENDGRID_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:g",
    "TWILIO_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:t",
    "STRIPE_SIGNING_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:ss",
    "SENDGRID_SIGNING_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:gs",
    "TWILIO_SIGNING_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:ts",
    "REDELIVERY_MAX_TRIES": "6",
    "REDELIVERY_BASE_DELAY_SECONDS": "60",
    "REDELIVERY_MAX_DELAY_SECONDS": "3600",
    "EMAIL_DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/email-dlq",
    "SMS_DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/sms-dlq",
    "NOT_FINAL_AFTER_MINUTES": "30",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
}

COLD_START = """
import importlib.util, json, sys
import botocore.session
import tidings.observability  # Powertools' Tracer: the X-Ray SDK builds its own client when imported

def no_client(*args, **kwargs):
    raise RuntimeError("an AWS client was built at import time")

botocore.session.Session.create_client = no_client
name = sys.argv[1]
spec = importlib.util.spec_from_file_location(name + "_app", f"functions/{name}/app.py")
spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(json.dumps(sorted(m for m in sys.modules if m.startswith("tidings"))))
"""


@pytest.mark.parametrize(
    "function", ["webhook_receiver", "webhook_processor", "retry_delivery", "notify_api"]
)
def test_a_composition_root_builds_no_client_and_imports_no_provider_at_cold_start(function):
    # Given a fresh interpreter with the function's settings, where building any AWS client fails
    # When the handler module is imported (a Lambda cold start)
    output = subprocess.run(
        [sys.executable, "-c", COLD_START, function],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**HANDLER_ENV, "PATH": ""},
    ).stdout.splitlines()[-1]
    # Then it succeeded without a client, and no provider client code was imported
    loaded = json.loads(output)
    assert not [module for module in loaded if module.startswith("tidings.providers.")]
