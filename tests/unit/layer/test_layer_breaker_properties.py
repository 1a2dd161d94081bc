"""Properties of the failure-rate breaker over any sequence of outcomes (hypothesis, in-memory store).

Several breakers over one store play several containers; a fake clock moves between calls. The DynamoDB
store behaves like the in-memory one (test_layer_circuit_breaker.py runs the same paths on moto).
"""

from __future__ import annotations

import contextlib
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings import errors
from tidings.config import BreakerSettings
from tidings.resilience.breaker import InMemoryBreakerStore, ProviderCircuitBreaker
from tidings.resilience.timing import FakeClock

pytestmark = pytest.mark.unit

#: A window of 60 s in 6 buckets; a sequence spanning less than 50 s stays inside one window.
WINDOW = {"window_seconds": 60, "window_buckets": 6}
MAX_SPAN_SECONDS = 50.0

OUTCOMES = {
    "ok": lambda: "ok",
    "declined": errors.PaymentDeclined("declined", provider="stripe", status=402),
    "invalid": errors.InvalidRequest("bad", provider="stripe", status=400),
    "unavailable": errors.ProviderUnavailable("down", provider="stripe", status=503),
    "timeout": errors.ProviderTimeout("slow", provider="stripe"),
    "network": errors.NetworkError("reset", provider="stripe"),
    "rate_limited": errors.RateLimited("slow down", provider="stripe", status=429),
}
FAILURES = ("unavailable", "timeout", "network")
HEALTHY = ("ok", "declined", "invalid")  # the provider answered: a call that did not fail


class Containers:
    def __init__(self, count: int, thresholds: BreakerSettings) -> None:
        self.clock = FakeClock()
        self.store = InMemoryBreakerStore()
        self.breakers = [
            ProviderCircuitBreaker("stripe", self.store, thresholds, wall_clock=self.clock)
            for _ in range(count)
        ]
        self.rejected = 0
        self.sent = 0

    def call(self, container: int, outcome: str) -> None:
        def attempt() -> str:
            self.sent += 1
            result = OUTCOMES[outcome]
            if isinstance(result, Exception):
                raise result
            return result()

        try:
            self.breakers[container % len(self.breakers)].call(attempt)
        except errors.CircuitOpen:
            self.rejected += 1
        except errors.ProviderError:
            pass

    @property
    def state(self) -> str:
        return self.store.load("stripe").state


def steps(outcomes: list[str], data: st.DataObject, containers: int) -> list[tuple[int, str, float]]:
    """Each outcome with the container that sees it and the time before it, the whole under 50 s."""
    gap = MAX_SPAN_SECONDS / max(1, len(outcomes))
    size = len(outcomes)
    who = data.draw(st.lists(st.integers(0, containers - 1), min_size=size, max_size=size))
    gaps = data.draw(st.lists(st.floats(0, gap, allow_nan=False), min_size=size, max_size=size))
    return list(zip(who, outcomes, gaps, strict=True))


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    fifths=st.integers(2, 16),
    threshold=st.floats(1, 40),
    containers=st.integers(1, 4),
    cache_seconds=st.sampled_from([0, 5]),
    neutral=st.integers(0, 5),
)
def test_a_40_percent_failure_rate_with_enough_calls_opens_the_breaker(
    data, fifths, threshold, containers, cache_seconds, neutral
):
    # Given 5n calls of which exactly 40% fail transiently, in any order, over any containers, within one
    # window, with at least the minimum number of calls, and a threshold at or under 40%
    calls = 5 * fifths
    minimum = data.draw(st.integers(1, calls))
    thresholds = BreakerSettings(
        error_threshold_percent=threshold,
        minimum_calls=minimum,
        recovery_seconds=1000,
        cache_seconds=cache_seconds,
        **WINDOW,
    )
    outcomes = data.draw(st.lists(st.sampled_from(FAILURES), min_size=2 * fifths, max_size=2 * fifths))
    outcomes += data.draw(st.lists(st.sampled_from(HEALTHY), min_size=3 * fifths, max_size=3 * fifths))
    outcomes += ["rate_limited"] * neutral  # a 429 counts neither way
    order = data.draw(st.permutations(outcomes))
    system = Containers(containers, thresholds)
    # When they happen (once it is open, the rest would only be refused)
    for container, outcome, gap in steps(order, data, containers):
        system.clock.advance(gap)
        system.call(container, outcome)
        if system.rejected:
            break
    # Then the breaker is open for every container, and no more calls go out
    assert system.state == "OPEN"
    sent = system.sent
    for container in range(containers):
        system.clock.advance(cache_seconds)
        system.call(container, "ok")
    assert system.sent == sent


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    minimum=st.integers(2, 60),
    threshold=st.floats(1, 100),
    containers=st.integers(1, 4),
)
def test_the_same_failures_below_the_minimum_volume_never_open_it(data, minimum, threshold, containers):
    # Given fewer calls than the minimum in one window, failing at any rate (all of them, even)
    thresholds = BreakerSettings(
        error_threshold_percent=threshold, minimum_calls=minimum, cache_seconds=0, **WINDOW
    )
    calls = data.draw(st.integers(1, minimum - 1))
    outcomes = data.draw(st.lists(st.sampled_from(FAILURES + HEALTHY), min_size=calls, max_size=calls))
    system = Containers(containers, thresholds)
    # When they happen, then not one is refused and the breaker never leaves CLOSED
    for container, outcome, gap in steps(outcomes, data, containers):
        system.clock.advance(gap)
        system.call(container, outcome)
        assert system.state == "CLOSED"
    assert system.rejected == 0
    assert system.sent == calls


@settings(max_examples=60, deadline=None)
@given(
    calls=st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from(HEALTHY), st.floats(0, 30, allow_nan=False)),
        min_size=1,
        max_size=120,
    ),
    threshold=st.floats(0.01, 100),
    minimum=st.integers(1, 50),
)
def test_successes_only_never_open_it(calls, threshold, minimum):
    thresholds = BreakerSettings(error_threshold_percent=threshold, minimum_calls=minimum, cache_seconds=0)
    system = Containers(4, thresholds)
    for container, outcome, gap in calls:
        system.clock.advance(gap)
        system.call(container, outcome)
    assert system.state == "CLOSED"
    assert system.rejected == 0
    assert system.store.states == {}  # never written: the healthy path changes no state


@settings(max_examples=40, deadline=None)
@given(
    others=st.integers(1, 6),
    probe_result=st.sampled_from(["ok", "declined", "unavailable", "timeout"]),
    cache_seconds=st.sampled_from([0, 5]),
    late=st.floats(0, 29),
)
def test_half_open_admits_exactly_one_probe(others, probe_result, cache_seconds, late):
    # Given a breaker opened by a failing provider, shared by the prober and the other containers
    thresholds = BreakerSettings(
        error_threshold_percent=50, minimum_calls=3, recovery_seconds=30, cache_seconds=cache_seconds
    )
    system = Containers(1 + others, thresholds)
    for _ in range(3):
        system.call(0, "unavailable")
    assert system.state == "OPEN"
    # When the recovery time is over and every container calls while the first one's probe is in flight
    system.clock.advance(30 + late)
    during: list[int] = []

    def probe() -> str:
        before = system.sent
        for container in range(1, 1 + others):
            system.call(container, "ok")
        during.append(system.sent - before)
        result = OUTCOMES[probe_result]
        if isinstance(result, Exception):
            raise result
        return result()

    expected = contextlib.nullcontext() if probe_result == "ok" else pytest.raises(errors.ProviderError)
    with expected:
        system.breakers[0].call(probe)
    # Then only the probe went out: every other container failed fast
    assert during == [0]
    assert system.rejected == others
    # And its outcome decides for everyone: a healthy answer closes, a failure reopens
    assert system.state == ("CLOSED" if probe_result in HEALTHY else "OPEN")


def test_concurrent_containers_take_one_probe_between_them():
    # Given an open breaker whose recovery time is over, and eight containers calling at the same moment
    thresholds = BreakerSettings(error_threshold_percent=50, minimum_calls=3, recovery_seconds=30)
    system = Containers(8, thresholds)
    for _ in range(3):
        system.call(0, "unavailable")
    system.clock.advance(31)
    release, started = threading.Event(), threading.Barrier(8)
    admitted: list[int] = []
    refused: list[int] = []

    def container(index: int) -> None:
        def attempt() -> str:
            admitted.append(index)
            release.wait(timeout=10)  # the probe is in flight until every other container tried
            return "ok"

        started.wait(timeout=10)
        try:
            system.breakers[index].call(attempt)
        except errors.CircuitOpen:
            refused.append(index)
            if len(refused) == 7:
                release.set()

    threads = [threading.Thread(target=container, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    # Then exactly one was let through, and its success closed the breaker
    assert len(admitted) == 1
    assert len(refused) == 7
    assert system.state == "CLOSED"
