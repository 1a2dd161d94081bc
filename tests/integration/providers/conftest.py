"""Provider clients against the real local sandboxes (HTTP on 127.0.0.1, ephemeral ports), with
Secrets Manager and the DynamoDB state tables on moto, and a fake clock for every wait.

A "container" here is one :class:`~tidings.providers.factory.ProviderFactory`: its own HTTP client,
credential cache and breaker cache, sharing only what real containers share (the sandbox, the
tables, the secrets). Every test is checked for secrets and personal data in its captured logs.
"""

from __future__ import annotations

import pytest
from support.provider_container import provider_aws, provider_env

from tidings.config import load_settings
from tidings.providers.factory import ProviderFactory
from tidings.resilience.timing import FakeClock
from tidings_local.sandboxes import credentials as sandbox_credentials
from tidings_local.sandboxes import start_sandbox

pytestmark = pytest.mark.integration

SENSITIVE = [
    sandbox_credentials.STRIPE_API_KEY,
    sandbox_credentials.SENDGRID_API_KEY,
    sandbox_credentials.TWILIO_API_KEY_SECRET,
    "sk_test_rotated_integration_key",
    "twilio-rotated-integration-secret",
    "jane.doe@example.com",
    "+447700900123",
    "4242424242424242",
]


@pytest.fixture(scope="module")
def sandboxes():
    with (
        start_sandbox("stripe") as stripe,
        start_sandbox("sendgrid") as sendgrid,
        start_sandbox("twilio") as twilio,
    ):
        yield {"stripe": stripe, "sendgrid": sendgrid, "twilio": twilio}


@pytest.fixture
def sandbox(sandboxes):
    for running in sandboxes.values():
        running.control.reset()
    return sandboxes


@pytest.fixture(autouse=True)
def no_personal_data_in_logs(log_lines, capsys, caplog):
    yield
    captured = capsys.readouterr()
    everything = "\n".join([*log_lines.lines, captured.out, captured.err, caplog.text])
    leaked = [value[:4] + "..." for value in SENSITIVE if value in everything]
    assert not leaked, f"sensitive values reached the logs: {leaked}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def aws(provider_secret_arns):
    return provider_aws(provider_secret_arns)


@pytest.fixture
def container(sandbox, aws, clock):
    """Build one "container" (a ProviderFactory) over the sandboxes and moto; call again for another."""

    def build(**overrides: str) -> ProviderFactory:
        env = provider_env(sandbox, aws["arns"], **({"TIDINGS_HTTP_TIMEOUT_SECONDS": "2"} | overrides))
        return ProviderFactory(
            load_settings(env),
            timing=clock.timing(),
            dynamodb_client=aws["dynamodb"],
            secrets_client=aws["secretsmanager"],
        )

    return build
