"""The providers' own rate-limit word, on every response: headroom metered, the shared bucket slowed when
the account is close to its limit, and Stripe's Stripe-Should-Retry followed (moto, fake clock)."""

import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.provider_fakes import Scripted, factory

from tidings import errors
from tidings.providers._errors import rate_limit_headroom
from tidings.providers.models import EmailMessage
from tidings.resilience.rate_limit import BucketState, InMemoryBucketStore, ProviderHeadroom, TokenBucket

pytestmark = pytest.mark.unit

ENV = {"RATE_LIMIT_TABLE": "rate-table", "SENDGRID_RATE_PER_SECOND": "10"}


def email(key: str) -> EmailMessage:
    return EmailMessage(
        to="jane.doe@example.com", to_name=None, subject="Receipt", text="Thanks", idempotency_key=key
    )


def accepted(clock, remaining: int, limit: int = 600, reset_in: float = 30):
    """SendGrid's 202 with its rate-limit headers (X-RateLimit-Reset is an epoch second)."""
    return lambda _request: httpx.Response(
        202,
        headers={
            "X-Message-Id": "sg-1",
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(int(clock.now + reset_in)),
        },
    )


def bucket_item(aws):
    return (
        aws["dynamodb"].get_item(TableName="rate-table", Key={"id": {"S": "rate-limit#sendgrid"}}).get("Item")
    )


def metric_values(capsys, name: str) -> list[float]:
    out = capsys.readouterr().out
    print(out, end="")  # still checked for personal data afterwards
    values = []
    for line in out.splitlines():
        if line.startswith("{") and f'"{name}"' in line:
            record = json.loads(line)
            if record.get("_aws") and name in record:
                values.append(record[name])
    return values


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "12", "X-RateLimit-Reset": "1700000030"},
            (600, 12, 1_700_000_030),
        ),
        (
            {"RateLimit-Limit": "100", "RateLimit-Remaining": "0", "RateLimit-Reset": "7"},
            (100, 0, 1_700_000_007),
        ),
        ({"X-RateLimit-Remaining": "3"}, None),  # no limit, no reset: nothing to say
        ({"Request-Id": "req_1"}, None),  # Stripe, Twilio: no rate-limit headers
    ],
)
def test_rate_limit_headers_are_read_as_a_providers_headroom(headers, expected):
    headroom = rate_limit_headroom(httpx.Headers(headers), now=1_700_000_000)
    if expected is None:
        assert headroom is None
    else:
        assert (headroom.limit, headroom.remaining, headroom.reset_at) == expected


def test_a_provider_close_to_its_limit_slows_the_shared_bucket_for_every_container(aws, clock, capsys):
    # Given SendGrid answers a success saying 5 of its 600 requests are left for the next 30 s
    first = factory(Scripted([], last=accepted(clock, remaining=5)), clock, env=ENV, aws=aws).email_channel()
    first.send(email("k-1"))
    # Then the shared bucket carries the advice: 5 requests over 30 s, until SendGrid's reset
    item = bucket_item(aws)
    assert float(item["advised_rate"]["N"]) == pytest.approx(5 / 30)
    assert float(item["advised_until"]["N"]) == int(clock.now + 30)
    # When another container sends a burst, it is paced at the provider's pace, not at its own 10/s
    second_http = Scripted([], last=accepted(clock, remaining=5))
    second = factory(second_http, clock, env=ENV, aws=aws).email_channel()
    start = clock.now
    for n in range(3):
        second.send(email(f"k-2-{n}"))
    assert clock.now - start == pytest.approx(2 / (5 / 30), rel=0.05)  # one request per 6 s after the first
    # And the headroom metric says how close the account is: 5/600 of the bucket's 10 tokens
    remaining = metric_values(capsys, "RateLimitRemaining")
    assert remaining
    assert min(remaining) <= 10 * 5 / 600 + 1e-3


def test_plenty_of_headroom_changes_nothing_and_writes_no_advice(aws, clock, capsys):
    http = Scripted([], last=accepted(clock, remaining=500))
    channel = factory(http, clock, env=ENV, aws=aws).email_channel()
    start = clock.now
    for n in range(5):
        channel.send(email(f"k-{n}"))
    assert "advised_rate" not in bucket_item(aws)
    assert clock.now - start == 0  # the bucket's burst of 10 covers them
    assert metric_values(capsys, "RateLimitSlowedDown") == []


def test_a_reset_within_the_headers_resolution_is_no_advice(aws, clock):
    # A limit of one that is full again within a second (a per-second bucket) says nothing about a rate
    http = Scripted([], last=accepted(clock, remaining=0, limit=1, reset_in=1))
    factory(http, clock, env=ENV, aws=aws).email_channel().send(email("k-1"))
    assert "advised_rate" not in bucket_item(aws)


def test_the_advice_runs_out_at_the_providers_reset(aws, clock):
    http = Scripted([accepted(clock, remaining=0, reset_in=10)], last=accepted(clock, remaining=500))
    channel = factory(http, clock, env=ENV, aws=aws).email_channel()
    channel.send(email("k-1"))  # nothing left until the reset, 10 s from now
    start = clock.now
    channel.send(email("k-2"))
    assert clock.now - start == pytest.approx(10, abs=1)  # waited for the reset, then went at full rate
    channel.send(email("k-3"))
    assert "advised_rate" not in bucket_item(aws)


def stripe_error(status: int, should_retry: str, **error):
    return httpx.Response(status, headers={"Stripe-Should-Retry": should_retry}, json={"error": error})


def test_stripe_should_retry_false_stops_the_retries_even_on_a_5xx(clock):
    http = Scripted([], last=stripe_error(500, "false", type="api_error", message="An error occurred"))
    gateway = factory(http, clock).payment_gateway()
    with pytest.raises(errors.ProviderUnavailable) as raised:
        gateway.retrieve("pi_1")
    assert raised.value.should_retry is False
    assert len(http.requests) == 1


def test_stripe_should_retry_true_retries_a_key_in_use(clock):
    in_use = stripe_error(
        409, "true", type="idempotency_error", code="idempotency_key_in_use", message="busy"
    )
    ok = httpx.Response(200, json={"id": "pi_1", "status": "succeeded", "amount": 1, "currency": "usd"})
    http = Scripted([in_use, ok])
    assert factory(http, clock).payment_gateway().retrieve("pi_1").payment_intent_id == "pi_1"
    assert len(http.requests) == 2


def test_a_decline_is_never_retried_whatever_the_header(clock):
    declined = stripe_error(402, "true", type="card_error", code="card_declined", message="declined")
    http = Scripted([], last=declined)
    with pytest.raises(errors.PaymentDeclined):
        factory(http, clock).payment_gateway().retrieve("pi_1")
    assert len(http.requests) == 1


@settings(max_examples=100, deadline=None)
@given(
    rate=st.floats(1, 50),
    capacity=st.integers(1, 20),
    share=st.floats(0, 1),
    gaps=st.lists(st.floats(0, 2), min_size=1, max_size=60),
)
def test_under_advice_never_more_than_its_burst_plus_its_rate_times_t(rate, capacity, share, gaps):
    # Given a bucket advised to a share of its rate for the next 1,000 s (fake clock)
    bucket = TokenBucket(rate=rate, capacity=float(capacity))
    advised = rate * share
    store = InMemoryBucketStore()
    store.advise("k", advised, 1000.0, share)
    now, admitted = 0.0, []
    for gap in gaps:
        now += gap
        state = store.load("k")
        decision = bucket.take(state, now)
        if decision.admitted:
            store.save(
                "k",
                BucketState(decision.tokens_left, now, state.version + 1, advised, 1000.0, share),
                state.version,
            )
            admitted.append(now)
    burst = 0.0 if advised <= 0 else max(1.0, capacity * share)
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            count = j - i + 1
            assert count <= burst + advised * (admitted[j] - start) + count * TokenBucket.EPSILON


def test_headroom_fraction_is_clamped():
    assert ProviderHeadroom(limit=10, remaining=20, reset_at=0).fraction == 1.0
    assert ProviderHeadroom(limit=10, remaining=-1, reset_at=0).fraction == 0.0


class CountingSes:
    def __init__(self, client=None, error: Exception | None = None) -> None:
        self.client, self.error, self.calls = client, error, 0

    def get_send_quota(self):
        self.calls += 1
        if self.error:
            raise self.error
        return self.client.get_send_quota()


def test_ses_sends_at_its_own_quota_read_once_per_container_and_ttl(aws, clock):
    # Given SES's account quota (moto's: 1 message per second) and a configured 14/s
    ses = CountingSes(aws["ses"])
    provider_factory = factory(Scripted([]), clock, aws=aws)
    provider_factory._ses_client = ses
    limiter = provider_factory.limiter("ses")
    # Then the bucket runs at the quota's rate, read once for the container until its TTL runs out
    assert (limiter.bucket.rate, limiter.bucket.capacity) == (1.0, 1.0)
    limiter.acquire()
    assert provider_factory.caller("ses").limiter.bucket.rate == 1.0
    assert ses.calls == 1
    clock.advance(301)
    assert limiter.bucket.rate == 1.0
    assert ses.calls == 2


def test_an_unreadable_ses_quota_keeps_the_configured_rate(aws, clock, log_lines):
    provider_factory = factory(Scripted([]), clock, aws=aws)
    provider_factory._ses_client = CountingSes(error=RuntimeError("no access"))
    assert provider_factory.limiter("ses").bucket.rate == 14.0
    assert any("ses send quota unreadable" in line for line in log_lines.lines)


def test_rates_from_a_live_source_apply_at_the_next_admission(aws, clock):
    from tidings.config import RateLimitSettings

    live = {"twilio": RateLimitSettings(service="twilio", rate_per_second=1000, burst=1000)}
    provider_factory = factory(Scripted([]), clock, aws=aws, rate_limits=lambda service: live[service])
    limiter = provider_factory.limiter("twilio")
    assert limiter.bucket.rate == 1000
    live["twilio"] = RateLimitSettings(service="twilio", rate_per_second=2, burst=2)
    assert (limiter.bucket.rate, limiter.bucket.capacity) == (2, 2)
