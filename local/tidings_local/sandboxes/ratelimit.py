"""The token bucket a sandbox uses to answer 429 like a provider's rate limiter."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Float slack, as in the clients' bucket: epoch timestamps (~1.8e9) resolve to ~2e-7 s, so a request
#: exactly one interval after the last finds 0.9999999 tokens, which is one.
EPSILON = 1e-6


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    #: Seconds until one more request is admitted (0 when one would be now).
    retry_after: int
    #: Epoch second at which the bucket is full again.
    reset_at: int


class TokenBucket:
    """``burst`` tokens, refilled at ``per_second``; each request takes one.

    Off (admits everything) until configured. A request is judged at the moment it arrived (``at``, read
    by the server before it reads the body), not when a busy server gets round to it, on the wall clock
    the clients' shared bucket paces with (``tidings.resilience.rate_limit``). Two requests judged out of
    their arrival order refill nothing for the earlier one. The clock is injectable for tests.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.per_second: float | None = None
        self.burst: int = 0
        self._tokens = 0.0
        self._updated = 0.0

    @property
    def enabled(self) -> bool:
        return self.per_second is not None

    def configure(self, per_second: float | None, burst: int | None = None) -> None:
        with self._lock:
            if per_second is None:
                self.per_second = None
                return
            if per_second <= 0:
                raise ValueError("per_second must be > 0 (or null to turn the limit off)")
            self.per_second = float(per_second)
            self.burst = max(1, int(burst if burst is not None else math.ceil(per_second)))
            self._tokens = float(self.burst)
            self._updated = self._clock()

    def acquire(self, at: float | None = None) -> Decision:
        with self._lock:
            if self.per_second is None:
                return Decision(True, 0, 0, 0, int(time.time()))
            now = self._clock() if at is None else at
            elapsed = max(0.0, now - self._updated)
            self._tokens = min(self.burst, self._tokens + elapsed * self.per_second)
            self._updated = max(self._updated, now)
            allowed = self._tokens >= 1.0 - EPSILON
            if allowed:
                self._tokens -= 1.0
            missing_for_one = max(0.0, 1.0 - self._tokens)
            missing_for_full = self.burst - self._tokens
            return Decision(
                allowed=allowed,
                limit=self.burst,
                remaining=int(self._tokens),
                retry_after=max(1, math.ceil(missing_for_one / self.per_second)) if not allowed else 0,
                reset_at=math.ceil(time.time() + missing_for_full / self.per_second),
            )

    def peek(self) -> Decision:
        """The current state without taking a token (for headers on responses the bucket did not gate)."""
        with self._lock:
            if self.per_second is None:
                return Decision(True, 0, 0, 0, int(time.time()))
            elapsed = max(0.0, self._clock() - self._updated)
            tokens = min(self.burst, self._tokens + elapsed * self.per_second)
            return Decision(
                allowed=tokens >= 1.0 - EPSILON,
                limit=self.burst,
                remaining=int(tokens),
                retry_after=0,
                reset_at=math.ceil(time.time() + (self.burst - tokens) / self.per_second),
            )

    def describe(self) -> dict[str, float | int | None]:
        return {"per_second": self.per_second, "burst": self.burst if self.enabled else None}
