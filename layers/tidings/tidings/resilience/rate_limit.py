"""A token bucket per provider whose state lives in DynamoDB, so the limit holds across containers.

Each Lambda container is blind to the others; a bucket in memory would let N containers send N times
the account rate. The bucket is one item per provider in RATE_LIMIT_TABLE (``tokens``,
``updated_at``, ``version``): a container reads it (strongly consistent), refills it for the time
passed (``rate`` tokens per second up to ``capacity``), takes one token and writes it back under the
condition that ``version`` did not move. A lost race re-reads and tries again. With no token, it
reserves the next one due (the bucket goes below zero by the tokens promised) and sleeps until then,
within the call's budget; otherwise it raises RateLimited so the caller (or the state machine) comes back
later. A reservation keeps a container's place in line: waiting containers do not all wake on the next
refill to race for one token (each race a read and a refused write), and the request leaves at its slot
rather than whenever the bucket's write returns, so the provider sees the bucket's pace. If DynamoDB
itself fails, the limiter fails open and logs: the provider's own 429 (handled by the retry policy) is
the second line of defence.

The provider's own headroom (its rate-limit headers on every response, SES's sending quota) comes in
through :meth:`RateLimiter.observe`. When the provider says less than ``slowdown_below_percent`` of its
limit is left, the limiter writes an *advice* into the same item (``advised_rate``, ``advised_until``,
``advised_headroom``; the version moves, so no racing writer loses it): until the provider's reset,
the bucket refills at what is left spread over the time to the reset. ``RateLimitRemaining`` is the
headroom Tidings has before either limit bites: the bucket's tokens left, or the provider's share left
of the bucket's capacity when that is lower.
See docs/resilience.md for the costs and for reserved concurrency.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from tidings.errors import RateLimited
from tidings.observability import emit_metric, logger
from tidings.resilience._items import number, put_if_version, read_item

if TYPE_CHECKING:
    from tidings.config import RateLimitSettings
    from tidings.resilience.budget import CallBudget
    from tidings.resilience.timing import Timing


@dataclass(frozen=True)
class BucketState:
    tokens: float
    updated_at: float
    version: int = 0
    #: The provider's advice: refill at ``advised_rate`` until ``advised_until`` (epoch seconds).
    advised_rate: float | None = None
    advised_until: float = 0.0
    #: The provider's share of its limit left (0..1) when it advised.
    advised_headroom: float | None = None

    def advice_at(self, now: float) -> tuple[float, float] | None:
        if self.advised_rate is None or now >= self.advised_until:
            return None
        return self.advised_rate, self.advised_until


@dataclass(frozen=True)
class ProviderHeadroom:
    """What a provider says of its own limit: ``remaining`` of ``limit`` left until ``reset_at`` (epoch)."""

    limit: float
    remaining: float
    reset_at: float

    @property
    def fraction(self) -> float:
        return max(0.0, min(1.0, self.remaining / self.limit)) if self.limit > 0 else 1.0


@dataclass(frozen=True)
class Decision:
    admitted: bool
    tokens_left: float
    wait_seconds: float = 0.0


@dataclass(frozen=True)
class TokenBucket:
    """The arithmetic only: ``rate`` tokens per second, at most ``capacity`` banked."""

    rate: float
    capacity: float

    def level(self, state: BucketState | None, now: float) -> float:
        if state is None:
            return self.capacity
        start = state.updated_at
        advice = state.advice_at(start)
        if advice is None:
            return min(self.capacity, state.tokens + max(0.0, now - start) * self.rate)
        rate, until = advice
        advised_capacity = self._advised_capacity(rate)
        slow_until = min(now, until)
        tokens = min(advised_capacity, state.tokens + max(0.0, slow_until - start) * rate)
        if now <= until:
            return tokens
        return min(self.capacity, tokens + (now - until) * self.rate)

    def _advised_capacity(self, advised_rate: float) -> float:
        # The burst shrinks with the rate, but never below one request (or to none when nothing is left).
        return 0.0 if advised_rate <= 0 else max(1.0, self.capacity * min(1.0, advised_rate / self.rate))

    #: Float slack: epoch timestamps (~1.7e9) resolve to ~2e-7 s, so "0.9999999 tokens" means one.
    EPSILON = 1e-6

    def take(self, state: BucketState | None, now: float, cost: float = 1.0) -> Decision:
        """Take ``cost`` tokens (one call, or a bulk request's items), or say how long until they are due."""
        tokens = self.level(state, now)
        if tokens >= cost - self.EPSILON:
            return Decision(admitted=True, tokens_left=max(0.0, tokens - cost))
        advice = state.advice_at(now) if state is not None else None
        if advice is None:
            return Decision(admitted=False, tokens_left=tokens, wait_seconds=(cost - tokens) / self.rate)
        rate, until = advice
        if rate > 0 and cost <= self._advised_capacity(rate) and tokens + rate * (until - now) >= cost:
            return Decision(admitted=False, tokens_left=tokens, wait_seconds=(cost - tokens) / rate)
        # Not before the provider's reset: then at the full rate from what was banked by then.
        at_reset = min(self._advised_capacity(rate), tokens + max(0.0, rate) * (until - now))
        wait = (until - now) + max(0.0, cost - at_reset) / self.rate
        return Decision(admitted=False, tokens_left=tokens, wait_seconds=wait)


class BucketStoreUnavailable(Exception):
    """The shared bucket could not be read or written (not a lost race)."""


class BucketStore(Protocol):
    def load(self, key: str) -> BucketState | None: ...

    def save(self, key: str, state: BucketState, expected_version: int | None) -> bool:
        """Write ``state`` if the stored version is still ``expected_version`` (None: no item yet)."""
        ...


class AdvisableBucketStore(BucketStore, Protocol):
    def advise(self, key: str, rate: float, until: float, headroom: float) -> None:
        """Record the provider's advice on the bucket and move its version (creating the item if none)."""
        ...


class InMemoryBucketStore:
    """One container's bucket: for tests and for running without RATE_LIMIT_TABLE."""

    def __init__(self) -> None:
        self._items: dict[str, BucketState] = {}
        self._lock = threading.Lock()

    def load(self, key: str) -> BucketState | None:
        with self._lock:
            return self._items.get(key)

    def save(self, key: str, state: BucketState, expected_version: int | None) -> bool:
        with self._lock:
            current = self._items.get(key)
            if (current.version if current else None) != expected_version:
                return False
            self._items[key] = state
            return True

    def advise(self, key: str, rate: float, until: float, headroom: float) -> None:
        with self._lock:
            current = self._items.get(key)
            if current is None:
                current = BucketState(tokens=math.inf, updated_at=0.0, version=0)
            self._items[key] = replace(
                current,
                version=current.version + 1,
                advised_rate=rate,
                advised_until=until,
                advised_headroom=headroom,
            )


class DynamoDBBucketStore:
    """Buckets as items of RATE_LIMIT_TABLE (partition key ``id``), written with conditional puts."""

    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self.client = client

    def load(self, key: str) -> BucketState | None:
        item = read_item(self.client, self.table_name, key, BucketStoreUnavailable)
        if item is None:
            return None
        advised = item.get("advised_rate")
        headroom = item.get("advised_headroom")
        return BucketState(
            # an item the advice created has no tokens yet: a full bucket, refilled for no time
            tokens=float(item["tokens"]["N"]) if "tokens" in item else math.inf,
            updated_at=float(item["updated_at"]["N"]) if "updated_at" in item else 0.0,
            version=int(item["version"]["N"]),
            advised_rate=float(advised["N"]) if advised else None,
            advised_until=float(item["advised_until"]["N"]) if "advised_until" in item else 0.0,
            advised_headroom=float(headroom["N"]) if headroom else None,
        )

    def save(self, key: str, state: BucketState, expected_version: int | None) -> bool:
        item = {
            "id": {"S": key},
            "tokens": number(state.tokens),
            "updated_at": number(state.updated_at),
            "version": {"N": str(state.version)},
        }
        if state.advised_rate is not None:  # carried over until it runs out
            item["advised_rate"] = number(state.advised_rate)
            item["advised_until"] = number(state.advised_until)
            item["advised_headroom"] = number(state.advised_headroom or 0.0)
        return put_if_version(self.client, self.table_name, item, expected_version, BucketStoreUnavailable)

    def advise(self, key: str, rate: float, until: float, headroom: float) -> None:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"id": {"S": key}},
                UpdateExpression=(
                    "SET advised_rate = :rate, advised_until = :until, advised_headroom = :headroom "
                    "ADD #version :one"
                ),
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={
                    ":rate": number(rate),
                    ":until": number(until),
                    ":headroom": number(headroom),
                    ":one": {"N": "1"},
                },
            )
        except Exception as exc:
            raise BucketStoreUnavailable(type(exc).__name__) from exc


class RateLimiter:
    """Admits one request per token of the provider's shared bucket; waits within the call budget."""

    #: Lost races before giving up on the shared bucket for this request (fail open).
    MAX_LOST_RACES = 20

    #: A reset closer than this says nothing about a rate (the headers count in whole seconds).
    MIN_ADVICE_WINDOW_SECONDS = 2.0

    def __init__(
        self,
        provider: str,
        bucket: TokenBucket,
        store: BucketStore,
        timing: Timing,
        *,
        slowdown_below_percent: float = 20.0,
        limits: Callable[[], RateLimitSettings] | None = None,
        lead_seconds: float = 0.0,
    ) -> None:
        self.provider = provider
        #: How far ahead a request's slot is set: the bucket is judged at the moment the request leaves,
        #: after its write, so a slow write does not send it late and the next one on time (too close).
        self.lead_seconds = lead_seconds
        self._bucket = bucket
        #: The capacity the metric is counted in (the configured one, when a quota changes the bucket's).
        self._metric_capacity = bucket.capacity
        self.store = store
        self.timing = timing
        self.slowdown_below_percent = slowdown_below_percent
        #: Where the current rate comes from when it can change (SES's quota, live configuration).
        self._limits = limits
        self.key = f"rate-limit#{provider}"
        #: The provider's last word on its headroom, as this container heard it.
        self._heard: ProviderHeadroom | None = None
        self._advised: tuple[float, float] | None = None

    @property
    def bucket(self) -> TokenBucket:
        if self._limits is None:
            return self._bucket
        limits = self._limits()
        if (limits.rate_per_second, limits.burst) != (self._bucket.rate, self._bucket.capacity):
            self._bucket = TokenBucket(rate=limits.rate_per_second, capacity=limits.burst)
        self.slowdown_below_percent = limits.slowdown_below_percent
        return self._bucket

    def observe(self, headroom: ProviderHeadroom) -> None:
        """What the provider said of its limit on a response; slows the shared bucket when it is close."""
        self._heard = headroom
        now = self.timing.wall()
        bucket = self.bucket
        window = headroom.reset_at - now
        if headroom.fraction * 100 >= self.slowdown_below_percent or window < self.MIN_ADVICE_WINDOW_SECONDS:
            return
        rate = min(bucket.rate, max(0.0, headroom.remaining) / window)
        if rate >= bucket.rate:
            return
        if self._advised is not None:
            advised_rate, advised_until = self._advised
            if advised_until == headroom.reset_at and abs(advised_rate - rate) <= 0.1 * bucket.rate:
                return  # this container already said so for this window
        try:
            advise = getattr(self.store, "advise", None)
            if advise is None:
                return
            advise(self.key, rate, headroom.reset_at, headroom.fraction)
        except BucketStoreUnavailable as exc:
            logger.warning(
                "rate limit store unavailable, advice not shared", provider=self.provider, error=str(exc)
            )
            return
        self._advised = (rate, headroom.reset_at)
        logger.info(
            "provider close to its rate limit, shared bucket slowed down",
            provider=self.provider,
            remaining=headroom.remaining,
            limit=headroom.limit,
            reset_in_seconds=round(window, 1),
            advised_rate=round(rate, 3),
        )
        emit_metric("RateLimitSlowedDown", provider=self.provider)

    def headroom_tokens(self, tokens_left: float, state: BucketState | None, now: float) -> float:
        """The tokens left, or the provider's share left of the bucket's capacity when that is lower."""
        shares = []
        if state is not None and state.advice_at(now) is not None and state.advised_headroom is not None:
            shares.append(state.advised_headroom)
        if self._heard is not None and now < self._heard.reset_at:
            shares.append(self._heard.fraction)
        if not shares:
            return tokens_left
        return min(tokens_left, min(shares) * self.bucket.capacity)

    def acquire(self, budget: CallBudget | None = None) -> float:
        """Take one token, or reserve the next one due and wait for it. Returns the tokens left."""
        for _ in range(self.MAX_LOST_RACES):
            try:
                state = self.store.load(self.key)
                started = self.timing.wall()
                now = started + self.lead_seconds  # when the request leaves at the earliest
                decision = self.bucket.take(state, now)
                wait = 0.0 if decision.admitted else decision.wait_seconds
                if wait > 0 and budget is not None and now + wait - started > budget.remaining():
                    emit_metric("RateLimitRejected", provider=self.provider)
                    raise RateLimited(
                        "account rate limit reached and the call budget cannot wait for a token",
                        provider=self.provider,
                        code="local_rate_limit",
                        retry_after=wait,
                    )
                # Admitted: what is left. Reserved: below zero by the token promised to this request.
                tokens = decision.tokens_left if decision.admitted else decision.tokens_left - 1.0
                expected = state.version if state else None
                if self.store.save(self.key, self._taken(state, tokens, now), expected):
                    # until the slot, not for the wait: the write took time of its own
                    until_slot = now + wait - self.timing.wall()
                    if until_slot > 0:
                        self.timing.sleep(until_slot)
                    left = max(0.0, tokens)
                    self._admitted(self.headroom_tokens(left, state, now), wait)
                    return left
                # another container took a token in between: re-read
            except BucketStoreUnavailable as exc:
                logger.warning(
                    "rate limit store unavailable, admitting request",
                    provider=self.provider,
                    error=str(exc),
                )
                return -1.0
        logger.warning("rate limit bucket contended, admitting request", provider=self.provider)
        return -1.0

    @staticmethod
    def _taken(state: BucketState | None, tokens: float, now: float) -> BucketState:
        if state is None:
            return BucketState(tokens=tokens, updated_at=now, version=1)
        taken = replace(state, tokens=tokens, updated_at=now, version=state.version + 1)
        if state.advice_at(now) is None:  # the advice ran out: drop it
            taken = replace(taken, advised_rate=None, advised_until=0.0, advised_headroom=None)
        return taken

    def _admitted(self, tokens_left: float, waited: float) -> None:
        # In tokens of the configured bucket, so the headroom alarm's 100 * remaining / rate holds when
        # a provider's own quota (SES) sets a different rate.
        remaining = tokens_left * self._metric_capacity / self.bucket.capacity
        emit_metric("RateLimitRemaining", value=round(remaining, 3), provider=self.provider)
        if waited > 0:
            logger.info("rate limit waited for a token", provider=self.provider, waited_seconds=waited)
            emit_metric("RateLimitWaited", provider=self.provider)
