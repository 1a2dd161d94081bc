"""The sandboxes' building blocks that decide behaviour: Stripe's form decoding and the token bucket."""

from __future__ import annotations

import pytest

from tidings_local.sandboxes.forms import FormError, decode_flat, decode_nested
from tidings_local.sandboxes.ratelimit import TokenBucket

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"amount=100&currency=usd", {"amount": "100", "currency": "usd"}),
        (b"metadata[order]=7&metadata[note]=a%26b", {"metadata": {"order": "7", "note": "a&b"}}),
        (b"expand[]=latest_charge&expand[]=customer", {"expand": ["latest_charge", "customer"]}),
        (
            b"items[1][price]=p2&items[0][price]=p1",
            {"items": [{"price": "p1"}, {"price": "p2"}]},
        ),
        (
            b"payment_method_data[card][number]=4242424242424242&payment_method_data[type]=card",
            {"payment_method_data": {"card": {"number": "4242424242424242"}, "type": "card"}},
        ),
        (b"metadata[empty]=", {"metadata": {"empty": ""}}),
    ],
)
def test_stripe_bracket_notation_decodes_to_nested_objects(body, expected):
    assert decode_nested(body) == expected


def test_a_key_used_both_as_value_and_hash_is_refused():
    with pytest.raises(FormError):
        decode_nested(b"metadata=x&metadata[a]=1")


def test_twilio_repeated_keys_become_lists():
    assert decode_flat(b"To=%2B1&MediaUrl=a&MediaUrl=b") == {"To": "+1", "MediaUrl": ["a", "b"]}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_is_off_until_configured():
    bucket = TokenBucket(FakeClock())
    assert all(bucket.acquire().allowed for _ in range(1000))


def test_token_bucket_admits_burst_then_refills_at_rate():
    clock = FakeClock()
    bucket = TokenBucket(clock)
    bucket.configure(per_second=2, burst=3)
    # A burst of 3 passes, the 4th waits about half a second (rounded up to 1 s for Retry-After)
    assert [bucket.acquire().allowed for _ in range(4)] == [True, True, True, False]
    refused = bucket.acquire()
    assert refused.retry_after == 1
    assert refused.remaining == 0
    # After 1 s two tokens are back, not more
    clock.now += 1.0
    assert [bucket.acquire().allowed for _ in range(3)] == [True, True, False]
    # After a long idle the bucket holds at most `burst`
    clock.now += 3600
    assert [bucket.acquire().allowed for _ in range(4)] == [True, True, True, False]


def test_token_bucket_retry_after_grows_with_a_slow_rate():
    clock = FakeClock()
    bucket = TokenBucket(clock)
    bucket.configure(per_second=0.1, burst=1)
    assert bucket.acquire().allowed
    assert bucket.acquire().retry_after == 10


def test_token_bucket_refuses_a_non_positive_rate():
    with pytest.raises(ValueError, match="per_second"):
        TokenBucket().configure(per_second=0, burst=1)


def test_token_bucket_judges_each_request_at_its_arrival():
    # Given one request per 200 ms, burst 1
    clock = FakeClock()
    bucket = TokenBucket(clock)
    bucket.configure(per_second=5, burst=1)
    # When two requests arrive 200 ms apart but the server judges the first one late (100 ms after it
    # arrived, just before the second)
    clock.now = 1000.3
    assert bucket.acquire(at=1000.2).allowed
    clock.now = 1000.45
    # Then the second is judged at its own arrival: admitted, its gap was the provider's 200 ms
    assert bucket.acquire(at=1000.4).allowed
    # and one arriving 100 ms after that is refused
    assert not bucket.acquire(at=1000.5).allowed


def test_token_bucket_judged_out_of_arrival_order_refills_nothing_backwards():
    clock = FakeClock()
    bucket = TokenBucket(clock)
    bucket.configure(per_second=5, burst=1)
    assert bucket.acquire(at=1000.4).allowed
    # an earlier arrival judged after a later one finds the bucket as the later one left it
    assert not bucket.acquire(at=1000.2).allowed
    assert bucket.acquire(at=1000.6).allowed
