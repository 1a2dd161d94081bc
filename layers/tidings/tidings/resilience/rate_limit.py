"""A token bucket per provider whose state lives in DynamoDB, so the limit holds across containers.

Each Lambda container is blind to the others; a bucket in memory would let N containers send N times
the account rate. The bucket is one item per provider in RATE_LIMIT_TABLE (``tokens``,
``updated_at``, ``version``): a container reads it (strongly consistent), refills it for the time
passed (``rate`` tokens per second up to ``capacity``), takes one token and writes it back under the
condition that ``version`` did not move. A lost race re-reads and tries again. With no token, it waits
exactly until the next token is due, within the call's budget; otherwise it raises RateLimited so the
caller (or the state machine) comes back later. If DynamoDB itself fails, the limiter fails open and
logs: the provider's own 429 (handled by the retry policy) is the second line of defence.
See docs/resilience.md for the costs and for reserved concurrency.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from tidings.errors import RateLimited
from tidings.observability import emit_metric, logger

if TYPE_CHECKING:
    from tidings.resilience.budget import CallBudget
    from tidings.resilience.timing import Timing


@dataclass(frozen=True)
class BucketState:
    tokens: float
    updated_at: float
    version: int = 0


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
        elapsed = max(0.0, now - state.updated_at)
        return min(self.capacity, state.tokens + elapsed * self.rate)

    #: Float slack: epoch timestamps (~1.7e9) resolve to ~2e-7 s, so "0.9999999 tokens" means one.
    EPSILON = 1e-6

    def take(self, state: BucketState | None, now: float, cost: float = 1.0) -> Decision:
        """Take ``cost`` tokens (one call, or a bulk request's items), or say how long until they are due."""
        tokens = self.level(state, now)
        if tokens >= cost - self.EPSILON:
            return Decision(admitted=True, tokens_left=max(0.0, tokens - cost))
        return Decision(admitted=False, tokens_left=tokens, wait_seconds=(cost - tokens) / self.rate)


class BucketStoreUnavailable(Exception):
    """The shared bucket could not be read or written (not a lost race)."""


class BucketStore(Protocol):
    def load(self, key: str) -> BucketState | None: ...

    def save(self, key: str, state: BucketState, expected_version: int | None) -> bool:
        """Write ``state`` if the stored version is still ``expected_version`` (None: no item yet)."""
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


class DynamoDBBucketStore:
    """Buckets as items of RATE_LIMIT_TABLE (partition key ``id``), written with conditional puts."""

    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self.client = client

    def load(self, key: str) -> BucketState | None:
        try:
            item = self.client.get_item(
                TableName=self.table_name, Key={"id": {"S": key}}, ConsistentRead=True
            ).get("Item")
        except Exception as exc:
            raise BucketStoreUnavailable(type(exc).__name__) from exc
        if item is None:
            return None
        return BucketState(
            tokens=float(item["tokens"]["N"]),
            updated_at=float(item["updated_at"]["N"]),
            version=int(item["version"]["N"]),
        )

    def save(self, key: str, state: BucketState, expected_version: int | None) -> bool:
        if expected_version is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(id)"}
        else:
            condition = {
                "ConditionExpression": "#version = :expected",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }
        item = {
            "id": {"S": key},
            "tokens": {"N": str(Decimal(repr(state.tokens)))},
            "updated_at": {"N": str(Decimal(repr(state.updated_at)))},
            "version": {"N": str(state.version)},
        }
        try:
            self.client.put_item(TableName=self.table_name, Item=item, **condition)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code == "ConditionalCheckFailedException":
                return False
            raise BucketStoreUnavailable(type(exc).__name__) from exc
        return True


class RateLimiter:
    """Admits one request per token of the provider's shared bucket; waits within the call budget."""

    #: Lost races before giving up on the shared bucket for this request (fail open).
    MAX_LOST_RACES = 20
    #: Waits for a token before giving up (a backstop; the call budget normally decides first).
    MAX_WAITS = 1000

    def __init__(self, provider: str, bucket: TokenBucket, store: BucketStore, timing: Timing) -> None:
        self.provider = provider
        self.bucket = bucket
        self.store = store
        self.timing = timing
        self.key = f"rate-limit#{provider}"

    def acquire(self, budget: CallBudget | None = None) -> float:
        """Take one token, waiting for it if needed. Returns the tokens left in the bucket."""
        waited = 0.0
        lost_races = waits = 0
        while lost_races < self.MAX_LOST_RACES and waits < self.MAX_WAITS:
            try:
                state = self.store.load(self.key)
                now = self.timing.wall()
                decision = self.bucket.take(state, now)
                if decision.admitted:
                    new_state = BucketState(
                        tokens=decision.tokens_left,
                        updated_at=now,
                        version=(state.version + 1) if state else 1,
                    )
                    if self.store.save(self.key, new_state, state.version if state else None):
                        self._admitted(decision.tokens_left, waited)
                        return decision.tokens_left
                    lost_races += 1
                    continue  # another container took a token in between: re-read
            except BucketStoreUnavailable as exc:
                logger.warning(
                    "rate limit store unavailable, admitting request",
                    provider=self.provider,
                    error=str(exc),
                )
                return -1.0
            wait = decision.wait_seconds
            if budget is not None and wait > budget.remaining():
                emit_metric("RateLimitRejected", provider=self.provider)
                raise RateLimited(
                    "account rate limit reached and the call budget cannot wait for a token",
                    provider=self.provider,
                    code="local_rate_limit",
                    retry_after=wait,
                )
            waited += wait
            waits += 1
            self.timing.sleep(wait)
        logger.warning("rate limit bucket contended, admitting request", provider=self.provider)
        return -1.0

    def _admitted(self, tokens_left: float, waited: float) -> None:
        emit_metric("RateLimitRemaining", value=round(tokens_left, 3), provider=self.provider)
        if waited > 0:
            logger.info("rate limit waited for a token", provider=self.provider, waited_seconds=waited)
            emit_metric("RateLimitWaited", provider=self.provider)
