"""Cold start: the factories import only what the channel asked for, and no handler imports what its first
call could."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.template import sam_template

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


#: What no handler may import at cold start, and why: each comes with the first call that needs it.
#: A key is a module or a package (its submodules included).
NOT_AT_COLD_START: dict[str, str] = {
    "boto3": "AWS clients are built on first use, and boto3 is imported with the first",
    "httpx": "a provider's (or the shop's) HTTP client is built by the first call to it",
    "tidings.providers": "a provider's client is built when a call needs it",
    "aws_xray_sdk.ext": "the tracer patches a library when the library is first imported",
    "requests": "nothing here calls it: the tracer patches only what the layer uses",
    "sqlite3": "nothing here uses it: the tracer patches only what the layer uses",
    "aws_lambda_powertools.utilities.idempotency": "its package imports boto3 for its DynamoDB layer",
    "aws_lambda_powertools.event_handler.openapi.models": "only /openapi.json and /swagger describe the API",
    "email_validator": "an e-mail address is checked when one is parsed",
    "jinja2": "a template is rendered when a message is sent",
    "cryptography": "SendGrid's ECDSA signature is checked when a SendGrid webhook arrives",
}
#: What a function may import of the above at cold start, each with its reason (none today).
MAY_IMPORT_AT_COLD_START: dict[str, dict[str, str]] = {}

HANDLER_IMPORT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import app  # as the runtime's init phase does
from tidings.observability import tracer
print(json.dumps({"tracing": not tracer.disabled, "modules": sorted(sys.modules)}))
"""


FUNCTIONS = sorted(
    logical_id
    for logical_id, resource in sam_template()["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
)


@pytest.fixture(scope="module")
def handlers() -> dict[str, Any]:
    """Each function's folder and its environment as deployed (the tracer on), the bench's own."""
    from tidings_local.bench.coldstart import handler_targets

    return {target.name: target for target in handler_targets(ROOT / "template.yaml")}


def _within(module: str, key: str) -> bool:
    return module == key or module.startswith(key + ".")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_handler_imports_at_cold_start_nothing_its_first_call_could(function, handlers):
    # Given a fresh interpreter with the function's environment as deployed, the tracer on
    from tidings_local.bench.coldstart import FAKE_AWS_ENV

    target = handlers[function]
    env = {"PATH": os.environ.get("PATH", ""), **FAKE_AWS_ENV, **target.environment}
    # When the runtime imports its handler module
    output = subprocess.run(
        [sys.executable, "-c", HANDLER_IMPORT, target.code_dir],
        capture_output=True,
        text=True,
        check=True,
        cwd=target.code_dir,
        env=env,
    ).stdout.splitlines()[-1]
    loaded = json.loads(output)
    assert loaded["tracing"], "the import ran with the tracer off: it would not test what is deployed"
    # Then none of what only a call needs was imported
    allowed = MAY_IMPORT_AT_COLD_START.get(function, {})
    imported = {
        key: reason
        for key, reason in NOT_AT_COLD_START.items()
        if key not in allowed and any(_within(module, key) for module in loaded["modules"])
    }
    assert imported == {}, f"{function} imports at cold start what its first call should: {sorted(imported)}"


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
