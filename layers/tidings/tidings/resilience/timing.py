"""Clocks and sleep, injectable so tests never wait for real and never assert on real time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Where the resilience code reads time and how it waits.

    ``monotonic`` measures budgets, ``wall`` (epoch seconds) is shared with other containers through
    DynamoDB (breaker, rate limit), ``sleep`` waits. ``scale`` multiplies retry waits
    (TIDINGS_RETRY_TIME_SCALE): 0.001 turns a 2 s Retry-After into 2 ms of real time.
    """

    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    scale: float = 1.0

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` of retry time (scaled)."""
        if seconds > 0:
            self.sleep(seconds * self.scale)


class FakeClock:
    """A clock that only moves when told to; its ``sleep`` advances it. For tests and benchmarks."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def timing(self, scale: float = 1.0) -> Timing:
        return Timing(monotonic=self, wall=self, sleep=self.sleep, scale=scale)
