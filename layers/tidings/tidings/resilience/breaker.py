"""A circuit breaker per provider that opens on a failure rate, shared by every container through DynamoDB.

Outcomes are counted in buckets of ``window_seconds / window_buckets`` seconds (opossum's rolling
buckets): one CIRCUIT_BREAKER_TABLE item per provider and bucket, ``calls`` and ``failures`` added
atomically (``UpdateItem ADD``, no read first) and expired by the table's TTL. The breaker opens when the
last ``window_buckets`` buckets hold at least ``minimum_calls`` calls of which at least
``error_threshold_percent`` failed. Its state (CLOSED / OPEN / HALF_OPEN, ``opened_at``, the half-open
probe's lease) is one more item per provider (``id`` = provider), changed only by conditional writes on
its ``version``, so when many containers race exactly one opens it, exactly one takes the half-open probe
and exactly one closes it. Closing starts a new counting ``epoch`` (part of the buckets' keys), so the
failures that opened the breaker do not open it again.

Only transient provider failures count as failures (5xx, network, timeouts). A call the provider answered
otherwise (a declined card, a 400, a 404) is a healthy call: the provider is up and said no. A 429 is the
rate limiter's business and counts neither way. An open breaker raises :class:`~tidings.errors.CircuitOpen`
without any request. Every state change is logged and metered. If DynamoDB fails, the breaker fails open.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from tidings.config import BreakerSettings
from tidings.errors import (
    CircuitOpen,
    NetworkError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from tidings.observability import emit_metric, logger
from tidings.resilience._items import number, put_if_version, read_item

if TYPE_CHECKING:
    from tidings.config import Settings

T = TypeVar("T")

#: The failures that say "the provider is unhealthy".
COUNTED_FAILURES = (ProviderUnavailable, NetworkError, ProviderTimeout)

State = Literal["CLOSED", "OPEN", "HALF_OPEN"]
_STATE_METRIC = {"CLOSED": "CircuitClosed", "OPEN": "CircuitOpened", "HALF_OPEN": "CircuitHalfOpened"}


@dataclass(frozen=True)
class CircuitState:
    """The shared state of one provider's breaker (no item yet: CLOSED, version 0, epoch 0)."""

    state: State = "CLOSED"
    version: int = 0
    epoch: int = 0
    opened_at: float = 0.0
    #: Until when the half-open probe in flight holds the breaker (0: no probe in flight).
    probe_until: float = 0.0
    probe_successes: int = 0


@dataclass(frozen=True)
class Counts:
    calls: int = 0
    failures: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.calls + other.calls, self.failures + other.failures)

    def failure_percent(self) -> float:
        return 100.0 * self.failures / self.calls if self.calls else 0.0


def trips(counts: Counts, thresholds: BreakerSettings) -> bool:
    """Whether a window's counts open the breaker: enough calls, and enough of them failed."""
    return (
        counts.calls >= thresholds.minimum_calls
        and counts.failures > 0
        and (counts.failure_percent() >= thresholds.error_threshold_percent)
    )


class BreakerStoreUnavailable(Exception):
    """The shared breaker state could not be read or written (not a lost race)."""


class BreakerStore(Protocol):
    def load(self, provider: str) -> CircuitState: ...

    def save(self, provider: str, state: CircuitState, expected_version: int) -> bool:
        """Write ``state`` if the stored version is still ``expected_version`` (0: no item yet)."""
        ...

    def add(self, key: str, calls: int, failures: int, expires_at: int) -> Counts:
        """Add to one bucket's counters atomically; returns the bucket's totals after the addition."""
        ...

    def counts(self, keys: list[str]) -> dict[str, Counts]:
        """The counters of the buckets that exist among ``keys``."""
        ...


class InMemoryBreakerStore:
    """One process's breaker state: for tests, and the reference the DynamoDB store behaves like."""

    def __init__(self) -> None:
        self.states: dict[str, CircuitState] = {}
        self.buckets: dict[str, Counts] = {}
        self.writes = 0
        self._lock = threading.Lock()

    def load(self, provider: str) -> CircuitState:
        with self._lock:
            return self.states.get(provider, CircuitState())

    def save(self, provider: str, state: CircuitState, expected_version: int) -> bool:
        with self._lock:
            if self.states.get(provider, CircuitState()).version != expected_version:
                return False
            self.states[provider] = state
            self.writes += 1
            return True

    def add(self, key: str, calls: int, failures: int, expires_at: int) -> Counts:
        with self._lock:
            self.buckets[key] = self.buckets.get(key, Counts()) + Counts(calls, failures)
            self.writes += 1
            return self.buckets[key]

    def counts(self, keys: list[str]) -> dict[str, Counts]:
        with self._lock:
            return {key: self.buckets[key] for key in keys if key in self.buckets}


def _number(item: dict[str, Any], name: str, default: float = 0) -> float:
    value = item.get(name)
    return float(value["N"]) if value else default


class DynamoDBBreakerStore:
    """The breaker's items in CIRCUIT_BREAKER_TABLE (partition key ``id``, TTL attribute ``expiration``)."""

    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self.client = client

    def load(self, provider: str) -> CircuitState:
        item = read_item(self.client, self.table_name, provider, BreakerStoreUnavailable)
        if not item or "state" not in item:
            return CircuitState()
        return CircuitState(
            state=item["state"]["S"],
            version=int(_number(item, "version")),
            epoch=int(_number(item, "epoch")),
            opened_at=_number(item, "opened_at"),
            probe_until=_number(item, "probe_until"),
            probe_successes=int(_number(item, "probe_successes")),
        )

    def save(self, provider: str, state: CircuitState, expected_version: int) -> bool:
        item = {
            "id": {"S": provider},
            "state": {"S": state.state},
            "version": {"N": str(state.version)},
            "epoch": {"N": str(state.epoch)},
            "opened_at": number(state.opened_at),
            "probe_until": number(state.probe_until),
            "probe_successes": {"N": str(state.probe_successes)},
        }
        # version 0: the provider has no state item yet
        return put_if_version(
            self.client, self.table_name, item, expected_version or None, BreakerStoreUnavailable
        )

    def add(self, key: str, calls: int, failures: int, expires_at: int) -> Counts:
        try:
            answer = self.client.update_item(
                TableName=self.table_name,
                Key={"id": {"S": key}},
                UpdateExpression="ADD calls :calls, failures :failures SET expiration = :expiration",
                ExpressionAttributeValues={
                    ":calls": {"N": str(calls)},
                    ":failures": {"N": str(failures)},
                    ":expiration": {"N": str(expires_at)},
                },
                ReturnValues="UPDATED_NEW",
            )
        except Exception as exc:
            raise BreakerStoreUnavailable(type(exc).__name__) from exc
        attributes = answer.get("Attributes", {})
        return Counts(int(_number(attributes, "calls")), int(_number(attributes, "failures")))

    def counts(self, keys: list[str]) -> dict[str, Counts]:
        if not keys:
            return {}
        try:
            answer = self.client.batch_get_item(
                RequestItems={
                    self.table_name: {
                        "Keys": [{"id": {"S": key}} for key in keys],
                        "ConsistentRead": True,
                        "ProjectionExpression": "id, calls, failures",
                    }
                }
            )
        except Exception as exc:
            raise BreakerStoreUnavailable(type(exc).__name__) from exc
        # A window is at most 60 small items: unprocessed keys are rare and read as "no calls there".
        return {
            item["id"]["S"]: Counts(int(_number(item, "calls")), int(_number(item, "failures")))
            for item in answer.get("Responses", {}).get(self.table_name, [])
        }


class _Rejected(Exception):
    """The breaker does not let this call through (open, or another container's probe in flight)."""

    def __init__(self, state: CircuitState) -> None:
        self.state = state


class ProviderCircuitBreaker:
    """One provider's breaker. ``thresholds`` is a :class:`BreakerSettings` or a function returning the
    current one (live configuration): it is read at every call, so a change applies at the next call."""

    def __init__(
        self,
        provider: str,
        store: BreakerStore,
        thresholds: BreakerSettings | Callable[[], BreakerSettings],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.provider = provider
        self.store = store
        self._thresholds = thresholds
        self.wall_clock = wall_clock
        self._cached: CircuitState | None = None
        self._cached_at = -math.inf
        #: Counters of this epoch's older buckets, as last read (they change only by late writers).
        self._older: dict[str, Counts] = {}

    @classmethod
    def from_settings(
        cls,
        provider: str,
        settings: Settings,
        *,
        dynamodb_client: Any | None = None,
        wall_clock: Callable[[], float] = time.time,
        thresholds: Callable[[], BreakerSettings] | None = None,
    ) -> ProviderCircuitBreaker:
        if dynamodb_client is None:
            import boto3

            dynamodb_client = boto3.client("dynamodb")
        store = DynamoDBBreakerStore(settings.require("circuit_breaker_table"), dynamodb_client)
        return cls(provider, store, thresholds or settings.breaker(), wall_clock)

    @property
    def thresholds(self) -> BreakerSettings:
        return self._thresholds() if callable(self._thresholds) else self._thresholds

    # --- the call ---------------------------------------------------------------------------
    def call(self, function: Callable[[], T]) -> T:
        thresholds = self.thresholds
        try:
            admitted = self._admit(thresholds)
        except _Rejected as rejected:
            logger.info(
                "circuit open, call rejected", provider=self.provider, opened_at=rejected.state.opened_at
            )
            emit_metric("CircuitRejected", provider=self.provider)
            raise CircuitOpen(
                "circuit breaker open: failing fast without calling the provider",
                provider=self.provider,
                code="circuit_open",
            ) from None
        except BreakerStoreUnavailable as exc:
            logger.warning(
                "circuit breaker store unavailable, admitting call", provider=self.provider, error=str(exc)
            )
            return function()
        try:
            result = function()
        except Exception as error:
            self._record(admitted, outcome(error), thresholds)
            raise
        self._record(admitted, "success", thresholds)
        return result

    def _admit(self, thresholds: BreakerSettings) -> CircuitState:
        """The CLOSED state a normal call goes through on, the HALF_OPEN state written when this call
        took the probe, or :class:`_Rejected`."""
        state = self._state(thresholds)
        now = self.wall_clock()
        if state.state == "CLOSED":
            return state
        if state.state == "OPEN" and now < state.opened_at + thresholds.recovery_seconds:
            raise _Rejected(state)
        if state.state == "HALF_OPEN" and now < state.probe_until:
            raise _Rejected(state)
        # Recovery time over (or a probe's lease ran out): try to be the one probe, on a fresh read.
        state = self._state(thresholds, fresh=True)
        if state.state == "CLOSED":
            return state
        ready = (state.state == "OPEN" and now >= state.opened_at + thresholds.recovery_seconds) or (
            state.state == "HALF_OPEN" and now >= state.probe_until
        )
        if not ready:
            raise _Rejected(state)
        probing = replace(
            state,
            state="HALF_OPEN",
            version=state.version + 1,
            probe_until=now + thresholds.recovery_seconds,
            probe_successes=state.probe_successes if state.state == "HALF_OPEN" else 0,
        )
        if not self._write(state, probing):
            raise _Rejected(self._state(thresholds, fresh=True))
        return probing

    def _record(self, admitted: CircuitState, result: str, thresholds: BreakerSettings) -> None:
        try:
            if admitted.state == "HALF_OPEN":
                self._probe_finished(admitted, result, thresholds)
            elif result == "success":
                # Counted on the state the call was admitted on, not read again: had another container
                # opened the breaker meanwhile, this success lands in a window no one reads after it
                # closes (closing starts a new epoch), and a success never opens anything.
                self._count(False, thresholds, admitted)
            elif result == "failure":
                self._count(True, thresholds, self._state(thresholds))
        except BreakerStoreUnavailable as exc:
            logger.warning(
                "circuit breaker store unavailable, outcome not counted",
                provider=self.provider,
                error=str(exc),
            )

    # --- counting ---------------------------------------------------------------------------
    def _count(self, failed: bool, thresholds: BreakerSettings, state: CircuitState) -> None:
        if state.state != "CLOSED":
            return  # opened meanwhile by another container: the window counts again once it closes
        now = self.wall_clock()
        index = math.floor(now / thresholds.bucket_seconds)
        current_key = self._key(state.epoch, thresholds, index)
        expires_at = math.ceil((index + thresholds.window_buckets + 1) * thresholds.bucket_seconds)
        current = self.store.add(current_key, 1, int(failed), expires_at)
        older_keys = [
            self._key(state.epoch, thresholds, index - back) for back in range(1, thresholds.window_buckets)
        ]
        if failed or any(key not in self._older for key in older_keys):
            self._read_older(older_keys)  # fresh on a failure, else once per bucket
        window = sum((self._older.get(key, Counts()) for key in older_keys), current)
        if not trips(window, thresholds):
            return
        if not failed:  # seen with older buckets read earlier: confirm on a fresh read before opening
            self._read_older(older_keys)
            window = sum((self._older.get(key, Counts()) for key in older_keys), current)
            if not trips(window, thresholds):
                return
        opened = replace(state, state="OPEN", version=state.version + 1, opened_at=now, probe_until=0.0)
        if self._write(state, opened):
            logger.warning(
                "circuit breaker opened on the failure rate",
                provider=self.provider,
                calls=window.calls,
                failures=window.failures,
                failure_percent=round(window.failure_percent(), 1),
                window_seconds=thresholds.window_seconds,
            )

    def _read_older(self, keys: list[str]) -> None:
        found = self.store.counts(keys)
        # A bucket with no item is remembered as empty too: else a quiet window (no calls in its older
        # buckets) would be read again after every call instead of once per bucket.
        self._older = {key: found.get(key, Counts()) for key in keys}

    def _key(self, epoch: int, thresholds: BreakerSettings, index: int) -> str:
        # The bucket length is in the key: a live change of the window never mixes buckets of two lengths.
        return f"{self.provider}#window#{epoch}#{round(thresholds.bucket_seconds * 1000)}#{index}"

    # --- the half-open probe ----------------------------------------------------------------
    def _probe_finished(self, probe: CircuitState, result: str, thresholds: BreakerSettings) -> None:
        now = self.wall_clock()
        if result == "failure":
            after = replace(probe, state="OPEN", version=probe.version + 1, opened_at=now, probe_until=0.0)
        elif result == "neutral":  # a 429 or a bug says nothing about health: free the probe for another
            after = replace(probe, version=probe.version + 1, probe_until=0.0)
        elif probe.probe_successes + 1 >= thresholds.probe_successes:
            after = CircuitState(state="CLOSED", version=probe.version + 1, epoch=probe.version + 1)
        else:
            after = replace(
                probe, version=probe.version + 1, probe_until=0.0, probe_successes=probe.probe_successes + 1
            )
        self._write(probe, after)

    # --- shared state -----------------------------------------------------------------------
    def _state(self, thresholds: BreakerSettings, *, fresh: bool = False) -> CircuitState:
        now = self.wall_clock()
        if fresh or self._cached is None or now - self._cached_at >= thresholds.cache_seconds:
            self._cached = self.store.load(self.provider)
            self._cached_at = now
        return self._cached

    def _write(self, before: CircuitState, after: CircuitState) -> bool:
        """A conditional state change; logs and meters it when this container won the write."""
        if not self.store.save(self.provider, after, before.version):
            self._cached = None  # someone else changed it: read afresh next time
            return False
        self._cached, self._cached_at = after, self.wall_clock()
        if after.epoch != before.epoch:
            self._older = {}
        if after.state != before.state:
            logger.warning(
                "circuit breaker changed state",
                provider=self.provider,
                from_state=before.state,
                to_state=after.state,
                opened_at=after.opened_at or None,
            )
            emit_metric(_STATE_METRIC[after.state], provider=self.provider)
        return True


def outcome(error: BaseException) -> str:
    """``failure`` (counts against the provider), ``success`` (the provider answered, with a refusal of
    its own: a decline, a 4xx) or ``neutral`` (a 429, the breaker itself, anything that is not a provider
    answer)."""
    if isinstance(error, CircuitOpen | RateLimited):
        return "neutral"
    if isinstance(error, COUNTED_FAILURES):
        return "failure"
    if isinstance(error, ProviderError):
        return "success"
    return "neutral"
