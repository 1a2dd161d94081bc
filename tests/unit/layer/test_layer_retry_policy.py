"""The retry policy per error category, and the backoff schedule's properties (hypothesis)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings import errors
from tidings.resilience.retry import RetryPolicy

pytestmark = pytest.mark.unit

POLICY = RetryPolicy()


@pytest.mark.parametrize(
    ("error", "attempts"),
    [
        (errors.RateLimited("slow", provider="p"), 10),
        (errors.NetworkError("reset", provider="p"), 3),
        (errors.ProviderTimeout("slow", provider="p"), 3),
        (errors.ProviderUnavailable("5xx", provider="p"), 3),
        (errors.CircuitOpen("open", provider="p"), 1),
        (errors.PaymentDeclined("no", provider="p", decline_code="insufficient_funds"), 1),
        (errors.InvalidRequest("bad", provider="p", field="amount"), 1),
        (errors.AuthenticationFailed("who", provider="p"), 1),
        (errors.ResourceNotFound("gone", provider="p"), 1),
        (errors.IdempotencyConflict("twice", provider="p"), 1),
        (ValueError("a bug, not a provider failure"), 1),
    ],
)
def test_attempts_allowed_per_category(error, attempts):
    assert POLICY.max_attempts(error) == attempts


def test_retry_after_is_honoured_exactly():
    error = errors.RateLimited("slow", provider="p", retry_after=2.0)
    assert POLICY.wait_seconds(error, attempt=1) == 2.0
    assert POLICY.wait_seconds(error, attempt=7) == 2.0


def test_rate_limited_without_a_hint_backs_off_with_jitter():
    error = errors.RateLimited("slow", provider="p")
    waits = {POLICY.wait_seconds(error, attempt=3) for _ in range(50)}
    assert all(0 <= wait <= POLICY.backoff_window(3) for wait in waits)
    assert len(waits) > 1  # jittered, not a fixed interval


policies = st.builds(
    RetryPolicy,
    base_seconds=st.floats(min_value=0.01, max_value=5),
    max_backoff_seconds=st.floats(min_value=0.05, max_value=120),
)


@settings(max_examples=200, deadline=None)
@given(policy=policies, attempt=st.integers(min_value=1, max_value=40))
def test_jittered_wait_stays_within_zero_and_the_window(policy, attempt):
    error = errors.NetworkError("reset", provider="p")
    wait = policy.wait_seconds(error, attempt)
    assert 0 <= wait <= policy.backoff_window(attempt) <= policy.max_backoff_seconds


@settings(max_examples=200, deadline=None)
@given(policy=policies, attempt=st.integers(min_value=1, max_value=40))
def test_window_grows_monotonically_up_to_the_cap(policy, attempt):
    window, next_window = policy.backoff_window(attempt), policy.backoff_window(attempt + 1)
    assert window <= next_window <= policy.max_backoff_seconds
    # exponential until the cap: the window doubles unless the cap stops it
    expected = min(policy.max_backoff_seconds, policy.base_seconds * 2 ** (attempt - 1))
    assert window == pytest.approx(expected)
