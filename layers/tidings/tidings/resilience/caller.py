"""The one path every provider call takes: budget -> retry -> circuit breaker -> rate limit -> attempt.

Provider clients give :meth:`ResilientCaller.call` a function that makes ONE attempt (one HTTP request
or one AWS API call) and raises a typed error from :mod:`tidings.errors`; everything else (how often
to retry, how long to wait, when to fail fast, when the budget is spent) happens here, identically for
every provider.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import tenacity

from tidings.errors import ProviderError, ProviderTimeout
from tidings.observability import emit_metric, logger, tracer
from tidings.resilience.budget import CallBudget
from tidings.resilience.retry import RetryPolicy
from tidings.resilience.timing import Timing

if TYPE_CHECKING:
    from tidings.config import Settings
    from tidings.resilience.breaker import ProviderCircuitBreaker
    from tidings.resilience.rate_limit import RateLimiter

T = TypeVar("T")


@dataclass(frozen=True)
class Attempt:
    """What one attempt needs to know: its number (1-based) and the seconds it may still take."""

    number: int
    time_left: float


class ResilientCaller:
    def __init__(
        self,
        provider: str,
        *,
        policy: RetryPolicy | None = None,
        timing: Timing | None = None,
        breaker: ProviderCircuitBreaker | None = None,
        limiter: RateLimiter | None = None,
        budget_seconds: float = 25.0,
        reserve_seconds: float = 2.0,
    ) -> None:
        self.provider = provider
        self.policy = policy or RetryPolicy()
        self.timing = timing or Timing()
        self.breaker = breaker
        self.limiter = limiter
        self.budget_seconds = budget_seconds
        self.reserve_seconds = reserve_seconds

    @classmethod
    def from_settings(
        cls,
        provider: str,
        settings: Settings,
        *,
        timing: Timing | None = None,
        breaker: ProviderCircuitBreaker | None = None,
        limiter: RateLimiter | None = None,
    ) -> ResilientCaller:
        return cls(
            provider,
            policy=RetryPolicy.from_settings(settings),
            timing=timing or Timing(scale=settings.retry_time_scale),
            breaker=breaker,
            limiter=limiter,
            budget_seconds=settings.call_budget_seconds,
            reserve_seconds=settings.lambda_time_reserve_seconds,
        )

    def start_budget(self, context: Any | None = None) -> CallBudget:
        return CallBudget.start(
            limit_seconds=self.budget_seconds,
            reserve_seconds=self.reserve_seconds,
            monotonic=self.timing.monotonic,
            context=context,
        )

    def call(
        self,
        attempt: Callable[[Attempt], T],
        *,
        endpoint: str,
        budget: CallBudget | None = None,
    ) -> T:
        """Run ``attempt`` until it succeeds, a permanent error occurs, or the policy or budget stops it.

        The last typed error surfaces unchanged, so its class name reaches the state machine.
        """
        budget = budget or self.start_budget()
        counter = {"attempt": 0}

        def one_attempt() -> T:
            counter["attempt"] += 1
            number = counter["attempt"]
            if budget.spent:
                raise ProviderTimeout(
                    "call time budget spent before the attempt", provider=self.provider, code="budget_spent"
                )

            def guarded() -> T:
                if self.limiter is not None:
                    self.limiter.acquire(budget)
                return attempt(Attempt(number=number, time_left=budget.remaining()))

            if self.breaker is not None:
                return self.breaker.call(guarded)
            return guarded()

        def stop(state: tenacity.RetryCallState) -> bool:
            error = state.outcome.exception() if state.outcome else None
            if error is None or state.attempt_number >= self.policy.max_attempts(error):
                return True
            wait = state.upcoming_sleep
            if wait > self.policy.max_retry_after_seconds:
                logger.info(
                    "provider asks to wait longer than allowed, giving up",
                    provider=self.provider,
                    endpoint=endpoint,
                    wait_seconds=wait,
                )
                return True
            if wait * self.timing.scale >= budget.remaining():
                logger.info(
                    "call time budget spent, giving up",
                    provider=self.provider,
                    endpoint=endpoint,
                    attempt=state.attempt_number,
                    error_type=type(error).__name__,
                )
                emit_metric("ProviderBudgetSpent", provider=self.provider, endpoint=endpoint)
                return True
            return False

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return self.policy.wait_seconds(error, state.attempt_number) if error else 0.0

        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            logger.info(
                "provider call retrying",
                provider=self.provider,
                endpoint=endpoint,
                attempt=state.attempt_number,
                wait_seconds=round(state.upcoming_sleep, 3),
                error=error.to_dict() if isinstance(error, ProviderError) else type(error).__name__,
            )
            emit_metric("ProviderCallRetried", provider=self.provider, endpoint=endpoint)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(self.policy.is_retryable),
            stop=stop,
            wait=wait,
            sleep=self.timing.pause,
            before_sleep=before_sleep,
            reraise=True,
        )
        # One X-Ray subsegment per logical call (retries and waits included) with the outcome annotated.
        with tracer.provider.in_subsegment(f"## {self.provider} {endpoint}") as subsegment:
            subsegment.put_annotation(key="provider", value=self.provider)
            subsegment.put_annotation(key="endpoint", value=endpoint)
            try:
                result = retrying(one_attempt)
            except ProviderError as error:
                subsegment.put_annotation(key="error_type", value=type(error).__name__)
                raise
            finally:
                # an int is a numbers.Number, which the X-Ray stubs name but mypy does not model
                subsegment.put_annotation(key="attempts", value=counter["attempt"])  # type: ignore[arg-type]
            return result
