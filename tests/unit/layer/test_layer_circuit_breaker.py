"""The shared circuit breaker (DynamoDB on moto): opens on the transient failure rate of a window with
enough calls, fails fast in every container, and closes after one half-open probe (fake clock, no waiting).
The properties over any sequence of outcomes are in test_layer_breaker_properties.py."""

import httpx
import pytest
from support.provider_fakes import Scripted, factory

from tidings import errors

pytestmark = pytest.mark.unit

BREAKER_ENV = {
    "CIRCUIT_BREAKER_TABLE": "breaker-table",
    "TIDINGS_BREAKER_MINIMUM_CALLS": "3",
    "TIDINGS_BREAKER_ERROR_THRESHOLD_PERCENT": "50",
    "TIDINGS_BREAKER_RECOVERY_SECONDS": "30",
    "TIDINGS_BREAKER_CACHE_SECONDS": "0",
    "TIDINGS_TRANSIENT_MAX_ATTEMPTS": "1",
}


def unavailable():
    return httpx.Response(503, json={"error": {"type": "api_error", "message": "An error occurred"}})


def ok():
    return httpx.Response(200, json={"id": "pi_1", "status": "succeeded", "amount": 1, "currency": "usd"})


def breaker_item(aws):
    return aws["dynamodb"].get_item(TableName="breaker-table", Key={"id": {"S": "stripe"}}).get("Item")


def test_repeated_5xx_open_the_breaker_for_every_container_until_a_probe_closes_it(aws, clock, log_lines):
    # Given two containers sharing the breaker table, the provider failing
    first_http = Scripted([], last=unavailable())
    first = factory(first_http, clock, env=BREAKER_ENV, aws=aws).payment_gateway()
    second_http = Scripted([], last=ok())
    second = factory(second_http, clock, env=BREAKER_ENV, aws=aws).payment_gateway()

    # When the first container sees three 5xx in a row
    for _ in range(3):
        with pytest.raises(errors.ProviderUnavailable) as raised:
            first.retrieve("pi_1")
        assert type(raised.value) is errors.ProviderUnavailable
    assert breaker_item(aws)["state"]["S"] == "OPEN"

    # Then the second container fails fast without any request
    with pytest.raises(errors.CircuitOpen):
        second.retrieve("pi_1")
    assert second_http.requests == []

    # When the recovery time has passed (fake clock) the next call is the single probe
    clock.advance(31)
    assert second.retrieve("pi_1").payment_intent_id == "pi_1"
    assert len(second_http.requests) == 1
    assert breaker_item(aws)["state"]["S"] == "CLOSED"

    # And the state changes were logged
    transitions = [line for line in log_lines.lines if "circuit breaker changed state" in line]
    assert any('"to_state":"OPEN"' in line for line in transitions)
    assert any('"to_state":"HALF_OPEN"' in line for line in transitions)
    assert any('"to_state":"CLOSED"' in line for line in transitions)


def test_a_failed_probe_reopens_the_breaker(aws, clock):
    http = Scripted([], last=unavailable())
    gateway = factory(http, clock, env=BREAKER_ENV, aws=aws).payment_gateway()
    for _ in range(3):
        with pytest.raises(errors.ProviderUnavailable):
            gateway.retrieve("pi_1")
    clock.advance(31)
    with pytest.raises(errors.ProviderUnavailable):
        gateway.retrieve("pi_1")  # the probe, still failing
    assert breaker_item(aws)["state"]["S"] == "OPEN"
    with pytest.raises(errors.CircuitOpen):
        gateway.retrieve("pi_1")
    assert len(http.requests) == 4


def test_declines_and_bad_requests_do_not_count_against_the_provider(aws, clock):
    declined = httpx.Response(
        402,
        json={"error": {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline"}},
    )
    http = Scripted([], last=declined)
    gateway = factory(http, clock, env=BREAKER_ENV, aws=aws).payment_gateway()
    for _ in range(5):
        with pytest.raises(errors.PaymentDeclined):
            gateway.retrieve("pi_1")
    assert breaker_item(aws) is None  # never tripped, never written
    assert len(http.requests) == 5


def test_a_failure_rate_under_the_threshold_never_opens_the_breaker(aws, clock):
    # 2 failures in 6 calls (at most 40% at any point with 3 calls or more) under a 50% threshold
    http = Scripted([ok(), unavailable(), ok(), ok(), unavailable(), ok()])
    gateway = factory(http, clock, env=BREAKER_ENV, aws=aws).payment_gateway()
    outcomes = []
    for _ in range(6):
        try:
            gateway.retrieve("pi_1")
            outcomes.append("ok")
        except errors.ProviderUnavailable as error:
            outcomes.append(type(error).__name__)
    assert "CircuitOpen" not in outcomes
    assert len(http.requests) == 6


def test_failures_below_the_minimum_volume_or_out_of_the_window_do_not_open_it(aws, clock):
    http = Scripted([], last=unavailable())
    gateway = factory(http, clock, env=BREAKER_ENV, aws=aws).payment_gateway()
    # Two failures: 100% of too few calls
    for _ in range(2):
        with pytest.raises(errors.ProviderUnavailable):
            gateway.retrieve("pi_1")
    assert breaker_item(aws) is None
    # A window later they have slid out: the third failure is one call of one
    clock.advance(61)
    with pytest.raises(errors.ProviderUnavailable):
        gateway.retrieve("pi_1")
    assert breaker_item(aws) is None
    # Within the window two more make three of three
    for _ in range(2):
        with pytest.raises(errors.ProviderUnavailable):
            gateway.retrieve("pi_1")
    assert breaker_item(aws)["state"]["S"] == "OPEN"


def test_the_failures_that_opened_the_breaker_do_not_open_it_again_once_a_probe_closed_it(aws, clock):
    http = Scripted([unavailable(), unavailable(), unavailable(), ok(), unavailable(), ok(), ok()])
    gateway = factory(http, clock, env=BREAKER_ENV, aws=aws).payment_gateway()
    for _ in range(3):
        with pytest.raises(errors.ProviderUnavailable):
            gateway.retrieve("pi_1")
    clock.advance(31)
    gateway.retrieve("pi_1")  # the probe closes it, within the same window
    assert breaker_item(aws)["state"]["S"] == "CLOSED"
    # Then one new failure is one failure of one call in a fresh count, not the fourth of five
    with pytest.raises(errors.ProviderUnavailable):
        gateway.retrieve("pi_1")
    gateway.retrieve("pi_1")
    gateway.retrieve("pi_1")
    assert breaker_item(aws)["state"]["S"] == "CLOSED"
    assert len(http.requests) == 7


def test_the_counters_are_bucket_items_that_expire(aws, clock):
    http = Scripted([], last=ok())
    gateway = factory(http, clock, env=BREAKER_ENV, aws=aws).payment_gateway()
    for _ in range(3):
        gateway.retrieve("pi_1")
    items = aws["dynamodb"].scan(TableName="breaker-table")["Items"]
    (bucket,) = items  # one bucket, no state item while nothing changed
    assert bucket["id"]["S"].startswith("stripe#window#0#")
    assert (bucket["calls"]["N"], bucket["failures"]["N"]) == ("3", "0")
    assert int(bucket["expiration"]["N"]) > clock.now + 60  # kept for the whole window, then the TTL's


def test_the_breaker_fails_open_when_its_table_is_unreachable(aws, clock, log_lines):
    env = {**BREAKER_ENV, "CIRCUIT_BREAKER_TABLE": "no-such-table"}
    http = Scripted([], last=ok())
    gateway = factory(http, clock, env=env, aws=aws).payment_gateway()
    assert gateway.retrieve("pi_1").payment_intent_id == "pi_1"
    assert any("circuit breaker store unavailable" in line for line in log_lines.lines)


def test_thresholds_from_a_live_source_apply_at_the_next_call(aws, clock):
    from tidings.config import BreakerSettings

    # Given thresholds read from a live source (as AppConfig would give them), at first a high volume
    live = {"thresholds": BreakerSettings(minimum_calls=100, cache_seconds=0)}
    http = Scripted([], last=unavailable())
    env = {**BREAKER_ENV}
    gateway = factory(
        http, clock, env=env, aws=aws, breaker_thresholds=lambda: live["thresholds"]
    ).payment_gateway()
    for _ in range(3):
        with pytest.raises(errors.ProviderUnavailable):
            gateway.retrieve("pi_1")
    assert breaker_item(aws) is None  # 3 of 100 calls: not enough volume
    # When the source lowers the minimum volume, the next failure opens it, with no new container
    live["thresholds"] = BreakerSettings(minimum_calls=4, cache_seconds=0)
    with pytest.raises(errors.ProviderUnavailable):
        gateway.retrieve("pi_1")
    assert breaker_item(aws)["state"]["S"] == "OPEN"


class CountingStore:
    """An in-memory breaker store that counts the requests a DynamoDB store would make."""

    def __init__(self):
        from tidings.resilience.breaker import InMemoryBreakerStore

        self.inner = InMemoryBreakerStore()
        self.requests: list[str] = []

    def __getattr__(self, name):
        self.requests.append(name)
        return getattr(self.inner, name)


def test_a_quiet_window_is_read_once_per_bucket_not_after_every_success(clock):
    from tidings.config import BreakerSettings
    from tidings.resilience.breaker import ProviderCircuitBreaker

    # Given a breaker whose window's older buckets hold no calls (nothing to read there)
    store = CountingStore()
    thresholds = BreakerSettings(minimum_calls=3, error_threshold_percent=50, cache_seconds=60)
    breaker = ProviderCircuitBreaker("stripe", store, thresholds, wall_clock=clock)
    # When five calls succeed within one bucket
    for _ in range(5):
        breaker.call(lambda: "ok")
    # Then each adds to its bucket, and the empty older buckets were read once, not five times
    assert store.requests.count("add") == 5
    assert store.requests.count("counts") == 1

    # And a failure still reads them afresh before deciding
    def down():
        raise errors.ProviderUnavailable("down", provider="stripe")

    with pytest.raises(errors.ProviderUnavailable):
        breaker.call(down)
    assert store.requests.count("counts") == 2
    # And the next bucket's first call reads the window again (the bucket before it is now an older one)
    clock.now += thresholds.bucket_seconds
    breaker.call(lambda: "ok")
    assert store.requests.count("counts") == 3


def test_a_success_is_counted_on_the_state_it_was_admitted_on_and_a_failure_on_a_fresh_one(clock):
    from tidings.config import BreakerSettings
    from tidings.resilience.breaker import ProviderCircuitBreaker

    # Given a breaker that trusts no cached state (every admission reads it)
    store = CountingStore()
    thresholds = BreakerSettings(minimum_calls=3, error_threshold_percent=50, cache_seconds=0)
    breaker = ProviderCircuitBreaker("stripe", store, thresholds, wall_clock=clock)
    # When a call succeeds
    breaker.call(lambda: "ok")
    # Then the state was read once, to admit it, and not again to count it
    assert store.requests.count("load") == 1

    def down():
        raise errors.ProviderUnavailable("down", provider="stripe")

    # And a failure is counted on the state as it is then (another container may have opened it)
    with pytest.raises(errors.ProviderUnavailable):
        breaker.call(down)
    assert store.requests.count("load") == 3
