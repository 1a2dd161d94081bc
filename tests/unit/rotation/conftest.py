"""Rotation steps against moto's Secrets Manager and the Twilio and SendGrid sandboxes over real HTTP
(127.0.0.1, free ports), with a fake clock for every time the rotation reads.

Every test fails if a credential (the documented sandbox ones, or any value a rotation stored in any
version of any secret) reaches a log line or stdout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import boto3
import httpx
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import secretsmanager_backends

from tidings.config import load, load_settings
from tidings.resilience.timing import FakeClock
from tidings.rotation import build_rotator
from tidings.rotation.settings import RotationSettings
from tidings_local.sandboxes import Sandbox, credentials, start_sandbox

REGION = "eu-west-1"
DOCUMENTED_SECRETS = [
    credentials.STRIPE_API_KEY,
    credentials.STRIPE_WEBHOOK_SECRET,
    credentials.SENDGRID_API_KEY,
    credentials.TWILIO_API_KEY_SECRET,
    credentials.TWILIO_AUTH_TOKEN,
]


def all_secret_values(client) -> list[str]:
    """Every string value of every version of every secret (what must never be logged)."""
    values = set(DOCUMENTED_SECRETS)
    for secret in client.list_secrets()["SecretList"]:
        versions = client.list_secret_version_ids(SecretId=secret["ARN"])["Versions"]
        for version in versions:
            try:
                raw = client.get_secret_value(SecretId=secret["ARN"], VersionId=version["VersionId"])
            except client.exceptions.ResourceNotFoundException:
                continue  # a pending version Secrets Manager made, not filled yet
            for key, value in json.loads(raw["SecretString"]).items():
                is_id = key.endswith(("_id", "_sid"))  # key ids and sids name a key, they open nothing
                if (
                    isinstance(value, str)
                    and not is_id
                    and ("secret" in key or "key" in key or "token" in key)
                ):
                    values.add(value)
    return sorted(values)


@pytest.fixture(scope="package")
def sandboxes() -> Iterator[dict[str, Sandbox]]:
    with start_sandbox("twilio") as twilio, start_sandbox("sendgrid") as sendgrid:
        yield {"twilio": twilio, "sendgrid": sendgrid}


@pytest.fixture
def sandbox(sandboxes) -> dict[str, Sandbox]:
    for running in sandboxes.values():
        running.control.reset()
    return sandboxes


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def aws(provider_secret_arns):
    return {"client": boto3.client("secretsmanager", region_name=REGION), "arns": provider_secret_arns}


@pytest.fixture(autouse=True)
def no_secret_in_logs(aws, log_lines, capsys, caplog):
    yield
    captured = capsys.readouterr()
    everything = "\n".join([*log_lines.lines, captured.out, captured.err, caplog.text])
    secrets = all_secret_values(aws["client"])
    leaked = [value[:4] + "..." for value in secrets if value in everything]
    assert not leaked, f"credentials reached the logs: {leaked}"


def environment(sandbox, aws, **overrides: str) -> dict[str, str]:
    return {
        "SENDGRID_API_BASE_URL": sandbox["sendgrid"].base_url,
        "TWILIO_API_BASE_URL": sandbox["twilio"].base_url,
        "STRIPE_SECRET_ARN": aws["arns"]["stripe"],
        "SENDGRID_SECRET_ARN": aws["arns"]["sendgrid"],
        "TWILIO_SECRET_ARN": aws["arns"]["twilio"],
        "STRIPE_SIGNING_SECRET_ARN": aws["arns"]["stripe-signing"],
        "TIDINGS_HTTP_TIMEOUT_SECONDS": "5",
        **overrides,
    }


@pytest.fixture
def rotator(sandbox, aws, clock):
    """Build the rotation's domain object over the sandboxes and moto; overrides are env variables."""
    clients: list[httpx.Client] = []

    def build(**overrides: str):
        env = environment(sandbox, aws, **overrides)
        http = httpx.Client(trust_env=False)
        clients.append(http)
        return build_rotator(
            load_settings(env),
            load(RotationSettings, env),
            secrets_client=aws["client"],
            http=http,
            clock=clock,
        )

    yield build
    for http in clients:
        http.close()


@pytest.fixture
def start_rotation(aws):
    """Do what RotateSecret does before it calls the function: a new version, labelled AWSPENDING,
    without a value. Returns its id (the ClientRequestToken)."""
    counter = iter(range(1, 1000))

    def start(provider: str) -> str:
        token = f"00000000-0000-4000-8000-{next(counter):012d}"
        secret = secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION].secrets[aws["arns"][provider]]
        secret.remove_version_stages_from_old_versions(["AWSPENDING"])
        secret.versions[token] = {
            "createdate": int(time.time()),
            "version_id": token,
            "version_stages": ["AWSPENDING"],
        }
        return token

    return start
