"""The token bucket: a property over any request pattern, and the DynamoDB-shared store."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.errors import RateLimited
from tidings.resilience.budget import CallBudget
from tidings.resilience.rate_limit import (
    DynamoDBBucketStore,
    InMemoryBucketStore,
    RateLimiter,
    TokenBucket,
)

pytestmark = pytest.mark.unit


@settings(max_examples=150, deadline=None)
@given(
    rate=st.floats(min_value=0.5, max_value=50),
    capacity=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=120),
)
def test_never_more_than_capacity_plus_rate_times_t_in_any_window(rate, capacity, gaps):
    # Given a bucket and requests arriving at arbitrary moments (fake clock)
    bucket = TokenBucket(rate=rate, capacity=float(capacity))
    store = InMemoryBucketStore()
    now = 0.0
    admitted: list[float] = []
    for gap in gaps:
        now += gap
        state = store.load("k")
        decision = bucket.take(state, now)
        if decision.admitted:
            from tidings.resilience.rate_limit import BucketState

            store.save(
                "k",
                BucketState(decision.tokens_left, now, (state.version if state else 0) + 1),
                state.version if state else None,
            )
            admitted.append(now)
    # Then every window [t_i, t_j] holds at most capacity + rate * (t_j - t_i) admissions
    # (within the bucket's float slack of a millionth of a token per admission)
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            count = j - i + 1
            assert count <= capacity + rate * (admitted[j] - start) + count * TokenBucket.EPSILON


def _limiter(store, clock, rate=2.0, capacity=2.0, provider="twilio"):
    return RateLimiter(provider, TokenBucket(rate=rate, capacity=capacity), store, clock.timing())


def test_a_burst_waits_for_tokens_at_the_configured_rate(clock):
    # Given 2 tokens per second and a burst capacity of 2
    limiter = _limiter(InMemoryBucketStore(), clock)
    start = clock.now
    # When 10 requests arrive at once
    for _ in range(10):
        limiter.acquire(CallBudget(60, clock))
    # Then the first two pass at once and the other eight wait 0.5 s each (fake time)
    assert clock.now - start == 4.0
    assert clock.slept == [0.5] * 8


def test_a_waiting_request_reserves_its_token_and_does_not_race_again_when_it_wakes(clock):
    # Given a bucket whose one token was just taken, and a store that counts what it is asked
    class Counting(InMemoryBucketStore):
        loads = saves = 0

        def load(self, key):
            self.loads += 1
            return super().load(key)

        def save(self, key, state, expected_version):
            self.saves += 1
            return super().save(key, state, expected_version)

    store = Counting()
    first, second = (_limiter(store, clock, rate=2.0, capacity=1.0) for _ in range(2))
    first.acquire(CallBudget(5, clock))
    store.loads = store.saves = 0

    # When another container's request arrives at once
    second.acquire(CallBudget(5, clock))

    # Then it read and wrote the bucket once, promising itself the next token, and slept until it was due
    assert (store.loads, store.saves) == (1, 1)
    assert clock.slept == [0.5]
    # and the request after it is due one interval later still
    assert first.bucket.take(store.load("rate-limit#twilio"), clock.now).wait_seconds == pytest.approx(0.5)


def test_a_waiting_request_leaves_at_its_slot_however_long_the_bucket_s_write_took(clock):
    # Given a bucket whose one token was just taken, in a store whose write takes 0.3 s (fake time)
    class SlowWrites(InMemoryBucketStore):
        def save(self, key, state, expected_version):
            clock.now += 0.3
            return super().save(key, state, expected_version)

    limiter = _limiter(SlowWrites(), clock, rate=1.0, capacity=1.0)
    limiter.acquire(CallBudget(5, clock))
    slot = clock.now + 1.0 - 0.3  # the next token is due one second after the first request's slot

    # When the next request arrives at once, then it sleeps what is left to its slot, not a whole second
    limiter.acquire(CallBudget(5, clock))
    assert clock.now == pytest.approx(slot, abs=1e-6)
    assert clock.slept == [pytest.approx(0.4)]


def test_a_lead_sets_each_slot_ahead_so_the_write_is_done_before_the_request_leaves(clock):
    # Given a limiter that sets slots 0.1 s ahead, over a full bucket
    store = InMemoryBucketStore()
    bucket = TokenBucket(rate=2.0, capacity=1.0)
    limiter = RateLimiter("twilio", bucket, store, clock.timing(), lead_seconds=0.1)
    start = clock.now

    # When two requests arrive at once
    limiter.acquire(CallBudget(5, clock))
    limiter.acquire(CallBudget(5, clock))

    # Then the first leaves 0.1 s from now and the second one interval after it, its token spent then
    assert clock.slept == [pytest.approx(0.1), pytest.approx(0.5)]
    assert clock.now - start == pytest.approx(0.6)
    assert bucket.level(store.load("rate-limit#twilio"), clock.now) == pytest.approx(0.0, abs=1e-6)


def test_no_token_within_the_budget_raises_rate_limited_without_waiting(clock):
    limiter = _limiter(InMemoryBucketStore(), clock, rate=0.1, capacity=1.0)
    limiter.acquire(CallBudget(5, clock))
    with pytest.raises(RateLimited) as raised:
        limiter.acquire(CallBudget(5, clock))
    assert raised.value.code == "local_rate_limit"
    assert raised.value.retry_after == 10.0
    assert clock.slept == []


def test_two_containers_share_one_bucket_in_dynamodb(aws, clock):
    # Given two containers with their own limiter over the same table
    first = _limiter(DynamoDBBucketStore("rate-table", aws["dynamodb"]), clock, rate=1.0, capacity=3.0)
    second = _limiter(DynamoDBBucketStore("rate-table", aws["dynamodb"]), clock, rate=1.0, capacity=3.0)
    budget_free = CallBudget(0, clock)  # no time to wait: a missing token raises
    # When they take tokens alternately at the same instant
    outcomes = []
    for limiter in (first, second, first, second):
        try:
            limiter.acquire(budget_free)
            outcomes.append("admitted")
        except RateLimited:
            outcomes.append("limited")
    # Then together they get the capacity, not capacity per container
    assert outcomes == ["admitted", "admitted", "admitted", "limited"]
    item = aws["dynamodb"].get_item(TableName="rate-table", Key={"id": {"S": "rate-limit#twilio"}})["Item"]
    assert int(item["version"]["N"]) == 3


def test_a_lost_race_rereads_the_bucket(aws, clock):
    store = DynamoDBBucketStore("rate-table", aws["dynamodb"])
    limiter = _limiter(store, clock)
    limiter.acquire(CallBudget(1, clock))
    stale = store.load("rate-limit#twilio")
    limiter.acquire(CallBudget(1, clock))
    # a write based on the stale version is refused
    assert store.save("rate-limit#twilio", stale, expected_version=stale.version) is False


def test_store_outage_fails_open(clock):
    class Broken:
        def load(self, key):
            from tidings.resilience.rate_limit import BucketStoreUnavailable

            raise BucketStoreUnavailable("ProvisionedThroughputExceededException")

        def save(self, *args):
            raise AssertionError("not reached")

    assert _limiter(Broken(), clock).acquire(CallBudget(1, clock)) == -1.0


@settings(max_examples=100, deadline=None)
@given(
    rate=st.floats(min_value=0.5, max_value=20),
    capacity=st.integers(min_value=1, max_value=10),
    requests=st.lists(
        st.tuples(st.integers(min_value=0, max_value=3), st.floats(min_value=0, max_value=1)),
        min_size=1,
        max_size=80,
    ),
)
def test_containers_sharing_one_bucket_hold_the_rate_together(rate, capacity, requests):
    # Given up to four containers sharing one bucket
    from tidings.resilience.timing import FakeClock

    # from 0, not the epoch: a 1e-7 s wait does not move an epoch-sized float, and that is not the point here
    clock = FakeClock(start=0.0)
    store = InMemoryBucketStore()
    containers = [_limiter(store, clock, rate=rate, capacity=float(capacity)) for _ in range(4)]
    admitted: list[float] = []
    # When requests arrive at arbitrary moments on arbitrary containers (each may wait for a token)
    for container, gap in requests:
        clock.now += gap
        containers[container].acquire(CallBudget(600, clock))
        admitted.append(clock.now)
    # Then every window [t_i, t_j] holds at most capacity + rate * (t_j - t_i) admissions
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            count = j - i + 1
            assert count <= capacity + rate * (admitted[j] - start) + count * TokenBucket.EPSILON
