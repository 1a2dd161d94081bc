"""The whole local system for the saga's end-to-end tests: booted once, reset between tests."""

import pytest
from support.e2e import FAST_SAGA, AwsOutageSwitch, NotifyClient

from tidings_local.chaos.crash import install_crash_proxies
from tidings_local.stack.lambdas import stderr_sink
from tidings_local.stack.system import LocalSystem

RECEIPT_FROM_ADDRESS = "receipts@example.com"  # the template's default ReceiptFromAddress

# The provider layer's own settings (docs/resilience.md), scaled for tests: in-call retry sleeps shortened,
# breaker state read fresh from its table, so one test's outage never leaks into the next, and a
# breaker that may open on the few calls a test makes (5 in its window, not the template's 20).
LAYER_TEST_SETTINGS = {
    "TIDINGS_RETRY_TIME_SCALE": "0.1",
    "TIDINGS_BREAKER_CACHE_SECONDS": "0",
    "TIDINGS_BREAKER_RECOVERY_SECONDS": "1",
    "TIDINGS_BREAKER_MINIMUM_CALLS": "5",
}


#: The least time a function gets per invocation here. The template's timeouts (10 s for the webhook
#: receiver and the 3-D Secure wait's function) are deadlines a busy shared machine misses while nothing is
#: wrong, failing the invocation; a test of the timeout path shortens it for itself
#: (tidings_local.chaos.crash_point). A deadline, never what a test measures.
FUNCTION_TIMEOUT_SECONDS = 120.0

#: Every log line any function wrote during the session, for the personal-data check.
FUNCTION_LOG_LINES: list[tuple[str, str]] = []


def _keep_and_show(logical_id: str, line: str) -> None:
    FUNCTION_LOG_LINES.append((logical_id, line))
    stderr_sink(logical_id, line)


@pytest.fixture(scope="session")
def function_logs() -> list[tuple[str, str]]:
    return FUNCTION_LOG_LINES


@pytest.fixture(scope="session")
def system():
    with LocalSystem.start(overrides=FAST_SAGA, log_sink=_keep_and_show) as local:
        switches = {"ses": AwsOutageSwitch(local.moto_url), "sns": AwsOutageSwitch(local.moto_url)}
        for spec in local.runtime.specs.values():
            spec.environment.update(LAYER_TEST_SETTINGS)
            # Each function's AWS requests name it in their User-Agent (app/<logical id>), so a test can
            # tell from moto's recording who made which (test_aws_requests.py).
            spec.environment["AWS_SDK_UA_APP_ID"] = spec.logical_id
            spec.timeout = max(spec.timeout, FUNCTION_TIMEOUT_SECONDS)
        # Point only the SES v2 and SNS clients of the sending functions at the switches, before their
        # first (cold) start; everything else still talks to moto directly.
        for logical_id in ("SendEmailFunction", "RetryDeliveryFunction"):
            local.runtime.pool(logical_id).spec.environment["AWS_ENDPOINT_URL_SESV2"] = switches["ses"].url
        for logical_id in ("SendSmsFunction", "RetryDeliveryFunction"):
            local.runtime.pool(logical_id).spec.environment["AWS_ENDPOINT_URL_SNS"] = switches["sns"].url
        # Pass-through proxies where the sending functions find their provider and DynamoDB, set before
        # their first container starts: the crash tests arm them without a cold start.
        local.crash = install_crash_proxies(local)
        # The operator verifies the sender identity in SES once per account.
        local.boto3_client("ses").verify_email_identity(EmailAddress=RECEIPT_FROM_ADDRESS)
        local.outage = switches
        yield local
        for switch in switches.values():
            switch.close()
        local.crash.close()


@pytest.fixture
def saga(system):
    """A clean slate per test: sandboxes reset, AWS fallbacks up, every provider's breaker closed and its
    token bucket full (a bucket an earlier test drained would throttle this one, depending on the order)."""
    for sandbox in system.sandboxes.values():
        sandbox.control.reset()
    for switch in system.outage.values():
        switch.down = False
    dynamodb = system.boto3_client("dynamodb")
    for logical_id in ("CircuitBreakerTable", "RateLimitTable"):
        table = system.physical_id(logical_id)
        for item in dynamodb.scan(TableName=table)["Items"]:
            dynamodb.delete_item(TableName=table, Key={"id": item["id"]})
    client = NotifyClient(system)
    yield client
    for sandbox in system.sandboxes.values():
        sandbox.control.clear_faults()
