"""Which failures are retried, how often and after how long: one policy for every provider.

* :class:`~tidings.errors.RateLimited`: up to ``rate_limited_max_attempts`` (10) attempts; waits the
  provider's Retry-After (or reset header) when given, never retries sooner than it, and gives up at
  once when the hint is longer than ``max_retry_after_seconds`` (the state machine waits instead).
* Network errors, timeouts and 5xx: up to ``transient_max_attempts`` (3) attempts with exponential
  backoff and full jitter (tenacity's ``wait_random_exponential``: a uniform wait in [0, window],
  window = min(max_backoff, base * 2^(attempt-1))).
* :class:`~tidings.errors.CircuitOpen` and every permanent error (declined, invalid request, auth,
  not found, idempotency conflict): never retried here.
* A provider that says whether to retry (Stripe's ``Stripe-Should-Retry``, on the error's
  ``should_retry``) is followed: ``false`` is not retried even on a 5xx, ``true`` is retried as a
  transient failure (a 409 lock timeout or key in use), a declined card never.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

import tenacity

from tidings.errors import CircuitOpen, PaymentDeclined, ProviderError, RateLimited, TransientProviderError

if TYPE_CHECKING:
    from tidings.config import Settings


@dataclass(frozen=True)
class RetryPolicy:
    transient_max_attempts: int = 3
    rate_limited_max_attempts: int = 10
    base_seconds: float = 0.5
    max_backoff_seconds: float = 8.0
    max_retry_after_seconds: float = 30.0
    _window: tenacity.wait_exponential = field(init=False, repr=False, compare=False)
    _jitter: tenacity.wait_random_exponential = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        window = tenacity.wait_exponential(multiplier=self.base_seconds, max=self.max_backoff_seconds)
        jitter = tenacity.wait_random_exponential(multiplier=self.base_seconds, max=self.max_backoff_seconds)
        object.__setattr__(self, "_window", window)
        object.__setattr__(self, "_jitter", jitter)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            transient_max_attempts=settings.transient_max_attempts,
            rate_limited_max_attempts=settings.rate_limited_max_attempts,
            base_seconds=settings.retry_base_seconds,
            max_backoff_seconds=settings.retry_max_backoff_seconds,
            max_retry_after_seconds=settings.max_retry_after_seconds,
        )

    def is_retryable(self, error: BaseException) -> bool:
        if isinstance(error, CircuitOpen | PaymentDeclined):
            return False
        if isinstance(error, ProviderError) and error.should_retry is not None:
            return error.should_retry
        return isinstance(error, TransientProviderError)

    def max_attempts(self, error: BaseException) -> int:
        """Attempts allowed in total (first one included) for a call whose last failure is ``error``."""
        if not self.is_retryable(error):
            return 1
        if isinstance(error, RateLimited):
            return self.rate_limited_max_attempts
        return self.transient_max_attempts

    def backoff_window(self, attempt: int) -> float:
        """Upper bound of the jittered wait after failed attempt number ``attempt`` (1-based)."""
        return self._window(cast("tenacity.RetryCallState", SimpleNamespace(attempt_number=attempt)))

    def wait_seconds(self, error: BaseException, attempt: int) -> float:
        """How long to wait after failed attempt ``attempt`` before the next one."""
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return max(0.0, float(error.retry_after))
        return self._jitter(cast("tenacity.RetryCallState", SimpleNamespace(attempt_number=attempt)))
