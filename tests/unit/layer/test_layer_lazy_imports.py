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


TRACED_IMPORTS = """
import json, sys
import tidings.observability
from aws_xray_sdk.core.patcher import _PATCHED_MODULES
traceable = {"httpx", "requests", "sqlite3"}
seen = {"at_import": sorted(_PATCHED_MODULES), "libraries": sorted(traceable & set(sys.modules))}
import boto3
seen["after_boto3"] = sorted(_PATCHED_MODULES)
import httpx
seen["after_httpx"] = sorted(_PATCHED_MODULES)
seen["httpx_client"] = httpx.Client.__module__
print(json.dumps(seen))
"""


@pytest.mark.parametrize("tracing", [True, False], ids=["tracer on", "tracer off"])
def test_the_tracer_patches_a_library_when_it_is_first_imported_and_imports_none_itself(tracing):
    # Given a fresh interpreter in a Lambda environment, the tracer on (as deployed) or off
    env = {"AWS_DEFAULT_REGION": "eu-west-1", "PATH": "", "LAMBDA_TASK_ROOT": str(ROOT)}
    if not tracing:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    # When the layer's observability is imported, then boto3, then httpx
    output = subprocess.run(
        [sys.executable, "-c", TRACED_IMPORTS], capture_output=True, text=True, check=True, env=env
    ).stdout.splitlines()[-1]
    seen = json.loads(output)
    # Then the tracer imported none of the libraries it can trace
    assert seen["at_import"] == []
    assert seen["libraries"] == []
    # And each is traced from its first import on, when the tracer is on
    assert seen["after_boto3"] == (["botocore"] if tracing else [])
    assert seen["after_httpx"] == (["botocore", "httpx"] if tracing else [])
    assert (seen["httpx_client"] == "aws_xray_sdk.ext.httpx.patch") is tracing
