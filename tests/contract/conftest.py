"""The sandboxes and the provider clients, with every HTTP exchange recorded for the contract checks.

The sandboxes post their webhooks to a local receiver; the provider clients run as in a container
(a ProviderFactory over moto's DynamoDB and Secrets Manager, a fake clock for every wait) but on an
httpx client whose response hook keeps each exchange, so a test checks exactly what went on the wire.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from support.provider_container import provider_aws, provider_env

from tidings.config import load_settings
from tidings.providers.factory import ProviderFactory
from tidings.resilience.timing import FakeClock
from tidings_local.sandboxes import start_sandbox


class Recorder:
    """An httpx client that keeps every response (with its request), bodies read."""

    def __init__(self) -> None:
        self.exchanges: list[httpx.Response] = []
        self.client = httpx.Client(trust_env=False, timeout=10.0, event_hooks={"response": [self._keep]})

    def _keep(self, response: httpx.Response) -> None:
        response.read()
        self.exchanges.append(response)

    def close(self) -> None:
        self.client.close()


class Webhooks:
    """What the sandboxes posted to the receiver, by provider."""

    def __init__(self, receiver) -> None:
        self.receiver = receiver

    def wait_for(self, predicate, timeout: float = 10.0) -> list[dict]:
        """The received posts once ``predicate(posts)`` holds (polled; fails after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            posts = list(self.receiver.received)
            if predicate(posts):
                return posts
            if time.monotonic() > deadline:
                raise AssertionError(f"webhooks not received in {timeout}s: {len(posts)} posts so far")
            time.sleep(0.02)


@pytest.fixture(scope="module")
def receiver():
    from support.sandboxes import Receiver

    server = Receiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
def sandboxes(receiver):
    with (
        start_sandbox("stripe", webhook_url=receiver.url + "/stripe", webhook_retry_delays=[0.0]) as stripe,
        start_sandbox("sendgrid", webhook_url=receiver.url + "/sendgrid", webhook_retry_delays=[0.0]) as sg,
        start_sandbox("twilio", webhook_url=receiver.url + "/twilio", webhook_retry_delays=[0.0]) as twilio,
    ):
        yield {"stripe": stripe, "sendgrid": sg, "twilio": twilio}


@pytest.fixture
def sandbox(sandboxes, receiver):
    for running in sandboxes.values():
        running.control.reset()
        running.control.set_webhook(receiver.url + f"/{running.name}", retry_delays=[0.0])
    receiver.clear()
    return sandboxes


@pytest.fixture
def webhooks(sandbox, receiver) -> Webhooks:
    return Webhooks(receiver)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recording = Recorder()
    yield recording
    recording.close()


@pytest.fixture
def aws(provider_secret_arns):
    return provider_aws(provider_secret_arns)


@pytest.fixture
def container(sandbox, aws, recorder):
    """One "container" (a ProviderFactory) over the sandboxes, moto and the recording HTTP client."""
    env = provider_env(
        sandbox,
        aws["arns"],
        RECEIPT_FROM_NAME="Shop",
        STRIPE_RETURN_URL="https://shop.example/return",
        TIDINGS_HTTP_TIMEOUT_SECONDS="5",
    )
    return ProviderFactory(
        load_settings(env),
        timing=FakeClock().timing(),
        dynamodb_client=aws["dynamodb"],
        secrets_client=aws["secretsmanager"],
        http_client=recorder.client,
    )
