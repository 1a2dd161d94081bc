"""One local system (the real template on moto, the sandboxes, the HTTP API behind its JWT
authorizer) for every attack in this package, and the check that an attack changed nothing.

``make test`` hands this folder to one worker as a whole (``SHARED_FOLDERS`` in tests/conftest.py), so
the system is built once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from support.e2e import API_TIMEOUT_SECONDS

from tidings_local.stack.system import DEFAULT_TEMPLATE, LocalSystem


@pytest.fixture(scope="package")
def system() -> Iterator[LocalSystem]:
    with LocalSystem.start(DEFAULT_TEMPLATE) as started:
        yield started


@pytest.fixture(scope="package")
def http(system: LocalSystem) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=system.api_url, timeout=API_TIMEOUT_SECONDS) as client:
        yield client


@pytest.fixture
def nothing_happens(system: LocalSystem) -> Iterator[None]:
    """The test's requests start no saga and make no Stripe request."""
    sfn = system.boto3_client("stepfunctions")
    machine = system.physical_id("NotificationSagaStateMachine")
    stripe = system.sandboxes["stripe"].control

    def executions() -> int:
        return len(sfn.list_executions(stateMachineArn=machine, maxResults=1000)["executions"])

    # A saga an earlier test started legitimately may still be charging: let it finish first, so its
    # Stripe request is not counted against this test.
    deadline = time.monotonic() + 60
    while (
        time.monotonic() < deadline
        and sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING", maxResults=1)["executions"]
    ):
        time.sleep(0.2)
    before_executions, before_stripe = executions(), len(stripe.requests())
    yield
    assert executions() == before_executions
    assert len(stripe.requests()) == before_stripe
