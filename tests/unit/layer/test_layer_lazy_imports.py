"""Cold start: the factories import only what the channel asked for, and never touch the network."""

import json
import subprocess
import sys

import pytest

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
