"""The shared call path: Retry-After, the time budget, the Lambda context, and what is never retried."""

from types import SimpleNamespace

import httpx
import pytest
from support.provider_fakes import Scripted, factory

from tidings import errors
from tidings.resilience.budget import bind_lambda_context
from tidings.resilience.caller import ResilientCaller
from tidings.resilience.timing import Timing

pytestmark = pytest.mark.unit


def ok_pi():
    return httpx.Response(200, json={"id": "pi_1", "status": "succeeded", "amount": 1, "currency": "usd"})


def too_many(retry_after="2"):
    return httpx.Response(
        429,
        json={
            "error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests"}
        },
        headers={"Retry-After": retry_after},
    )


def test_retry_after_is_waited_out_then_the_call_succeeds(clock):
    transport = Scripted([too_many("2"), ok_pi()])
    result = factory(transport, clock).payment_gateway().retrieve("pi_1")
    assert result.payment_intent_id == "pi_1"
    assert len(transport.requests) == 2
    assert clock.slept == [2.0]


def test_the_time_scale_shortens_every_retry_sleep(clock):
    # Given TIDINGS_RETRY_TIME_SCALE=0.001 (as in the local stack's tests)
    transport = Scripted([too_many("2"), ok_pi()])
    provider_factory = factory(transport, clock)
    provider_factory.timing = clock.timing(scale=0.001)
    provider_factory.payment_gateway().retrieve("pi_1")
    # Then the 2 s hint costs 2 ms of (fake) time
    assert clock.slept == [pytest.approx(0.002)]


def test_rate_limited_is_retried_up_to_ten_attempts(clock):
    transport = Scripted([], last=too_many("1"))
    with pytest.raises(errors.RateLimited) as raised:
        factory(transport, clock).payment_gateway().retrieve("pi_1")
    assert len(transport.requests) == 10
    assert raised.value.retry_after == 1.0


def test_a_retry_after_longer_than_allowed_surfaces_at_once(clock):
    transport = Scripted([], last=too_many("120"))
    with pytest.raises(errors.RateLimited):
        factory(transport, clock).payment_gateway().retrieve("pi_1")
    assert len(transport.requests) == 1
    assert clock.slept == []


def test_when_the_budget_is_spent_the_typed_error_surfaces(clock):
    # Given a 5 s budget and a provider asking to wait 3 s each time
    transport = Scripted([], last=too_many("3"))
    gateway = factory(transport, clock, env={"TIDINGS_CALL_BUDGET_SECONDS": "5"}).payment_gateway()
    # When the call runs out of time
    with pytest.raises(errors.RateLimited):
        gateway.retrieve("pi_1")
    # Then it stopped after one wait: a second 3 s wait would not fit
    assert len(transport.requests) == 2
    assert clock.slept == [3.0]


def test_the_lambda_context_bounds_the_budget(clock):
    # Given an invocation with 4 s left and a 2 s reserve for the handler
    bind_lambda_context(SimpleNamespace(get_remaining_time_in_millis=lambda: 4000))
    try:
        transport = Scripted([], last=too_many("1.5"))
        with pytest.raises(errors.RateLimited):
            factory(transport, clock).payment_gateway().retrieve("pi_1")
    finally:
        bind_lambda_context(None)
    # Then only one 1.5 s wait fits into the 2 s left
    assert clock.slept == [1.5]
    assert len(transport.requests) == 2


def test_each_request_timeout_never_exceeds_the_time_left(clock):
    transport = Scripted([ok_pi()])
    gateway = factory(transport, clock, env={"TIDINGS_CALL_BUDGET_SECONDS": "4"}).payment_gateway()
    gateway.retrieve("pi_1")
    timeout = transport.requests[0].extensions["timeout"]
    assert timeout["read"] == 4.0
    assert timeout["connect"] == 3.0


def test_default_request_timeout_is_ten_seconds(clock):
    transport = Scripted([ok_pi()])
    factory(transport, clock).payment_gateway().retrieve("pi_1")
    assert transport.requests[0].extensions["timeout"]["read"] == 10.0


def test_a_budget_already_spent_makes_no_request(clock):
    calls = []
    caller = ResilientCaller("stripe", timing=clock.timing(), budget_seconds=0)
    with pytest.raises(errors.ProviderTimeout) as raised:
        caller.call(lambda attempt: calls.append(attempt), endpoint="x")
    assert raised.value.code == "budget_spent"
    assert calls == []


def test_bugs_are_not_retried():
    calls = []

    def broken(attempt):
        calls.append(attempt.number)
        raise KeyError("id")

    with pytest.raises(KeyError):
        ResilientCaller("stripe", timing=Timing(sleep=lambda s: None)).call(broken, endpoint="x")
    assert calls == [1]


def test_auth_failure_refreshes_credentials_once_and_succeeds(clock):
    from support.provider_fakes import StaticCredentials

    from tidings.secrets import StripeCredentials

    credentials = StaticCredentials(
        rotated={"stripe": StripeCredentials(api_key="sk_test_unit_secret_key_2")}
    )

    def answer(request):
        if request.headers["Authorization"] != "Bearer sk_test_unit_secret_key_2":
            return httpx.Response(
                401, json={"error": {"type": "invalid_request_error", "message": "Invalid API Key"}}
            )
        return ok_pi()

    transport = Scripted([], last=answer)
    factory(transport, clock, credentials=credentials).payment_gateway().retrieve("pi_1")
    assert credentials.refreshes == 1
    assert len(transport.requests) == 2


def test_auth_failure_with_an_unchanged_secret_fails_after_one_refresh(clock):
    from support.provider_fakes import StaticCredentials

    credentials = StaticCredentials()
    transport = Scripted([], last=httpx.Response(401, json={"error": {"message": "Invalid API Key"}}))
    with pytest.raises(errors.AuthenticationFailed):
        factory(transport, clock, credentials=credentials).payment_gateway().retrieve("pi_1")
    assert credentials.refreshes == 1
    assert len(transport.requests) == 1


def test_handlers_decorated_by_the_logger_bind_their_lambda_context():
    from tidings.observability import logger
    from tidings.resilience.budget import current_lambda_context

    context = SimpleNamespace(
        function_name="f",
        memory_limit_in_mb=512,
        invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:f",
        aws_request_id="req-1",
        get_remaining_time_in_millis=lambda: 4000,
    )

    @logger.inject_lambda_context(correlation_id_path="id")
    def handler(event, context):
        return current_lambda_context()

    # While the handler runs, provider budgets see the invocation; afterwards nothing lingers
    assert handler({"id": "n-1"}, context) is context
    assert current_lambda_context() is None
