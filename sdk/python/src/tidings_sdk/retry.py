"""When to try a request again, and how long to wait first.

A try is repeated after a 429, a 5xx, a 409 ``idempotency_in_progress`` or no answer at all, up to
``max_attempts`` tries in all. The wait is the answer's ``Retry-After`` when it gives one (seconds or an
HTTP date, capped at ``max_delay_seconds``), else full-jitter exponential backoff:
``uniform(0, min(max_delay_seconds, base_delay_seconds * 2 ** (try - 1)))``. Every request that changes
something carries an idempotency key, the same on every try, so a repeat never starts a second
notification.

The intervals and the sleep are configuration: ``RetryPolicy(sleep=...)`` lets a caller (or a test)
wait its own way.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: Statuses tried again (a 409 only with code ``idempotency_in_progress``).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 30.0
    retry_statuses: frozenset[int] = RETRY_STATUSES
    #: Whether a request that got no answer (refused, timed out) is tried again.
    retry_transport_errors: bool = True
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    #: The jitter's random source, ``uniform(0, cap)``.
    jitter: Callable[[float, float], float] = field(default=random.uniform, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay_seconds < 0 or self.max_delay_seconds < 0:
            raise ValueError("delays must not be negative")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after try number ``attempt`` (1-based) failed."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay_seconds)
        cap = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (attempt - 1))
        return self.jitter(0.0, cap)


#: One try, and no waiting: what a caller that retries by itself passes.
NO_RETRIES = RetryPolicy(max_attempts=1)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds, or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(seconds, 0.0) if seconds == seconds else None  # NaN is unreadable
