"""Importing one provider's client pulls in only what defines it: no httpx, pydantic, logger or retry
policy until the client is built or sends (what keeps it lighter than the official SDK's import; the
bench measures how much, docs/benchmarks.md)."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

# What a client needs once it sends, and what the handler already imports for itself.
HEAVY = (
    "httpx",
    "pydantic",
    "tenacity",
    "boto3",
    "botocore",
    "aws_lambda_powertools",
    "tidings.observability",
)

SCRIPT = """
import json, sys
import {module}
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("provider", ["stripe", "sendgrid", "twilio"])
def test_importing_a_provider_client_imports_nothing_heavy(provider):
    # Given a fresh interpreter
    # When it imports one provider's client module
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(module=f"tidings.providers.{provider}")],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(out.stdout)
    # Then none of what the client needs only to send has been imported
    assert [name for name in loaded if name.split(".")[0] in HEAVY or name in HEAVY] == []
    assert f"tidings.providers.{provider}" in loaded
