"""Sandboxes started once per module (each on its own free port) and reset before every test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from support.sandboxes import Receiver

from tidings_local.sandboxes import Sandbox, credentials, start_sandbox


def _sandbox(name: str) -> Iterator[Sandbox]:
    with start_sandbox(name, webhook_retry_delays=[0.0, 0.0, 0.0]) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def stripe_module() -> Iterator[Sandbox]:
    yield from _sandbox("stripe")


@pytest.fixture(scope="module")
def sendgrid_module() -> Iterator[Sandbox]:
    yield from _sandbox("sendgrid")


@pytest.fixture(scope="module")
def twilio_module() -> Iterator[Sandbox]:
    yield from _sandbox("twilio")


@pytest.fixture
def stripe(stripe_module: Sandbox) -> Sandbox:
    stripe_module.control.reset()
    return stripe_module


@pytest.fixture
def sendgrid(sendgrid_module: Sandbox) -> Sandbox:
    sendgrid_module.control.reset()
    return sendgrid_module


@pytest.fixture
def twilio(twilio_module: Sandbox) -> Sandbox:
    twilio_module.control.reset()
    return twilio_module


def _client(base_url: str, **kwargs) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, trust_env=False, timeout=5.0, **kwargs) as client:
        yield client


@pytest.fixture
def stripe_http(stripe: Sandbox) -> Iterator[httpx.Client]:
    yield from _client(stripe.base_url, headers={"Authorization": f"Bearer {credentials.STRIPE_API_KEY}"})


@pytest.fixture
def sendgrid_http(sendgrid: Sandbox) -> Iterator[httpx.Client]:
    yield from _client(sendgrid.base_url, headers={"Authorization": f"Bearer {credentials.SENDGRID_API_KEY}"})


@pytest.fixture
def twilio_http(twilio: Sandbox) -> Iterator[httpx.Client]:
    yield from _client(
        twilio.base_url, auth=(credentials.TWILIO_API_KEY_SID, credentials.TWILIO_API_KEY_SECRET)
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()
