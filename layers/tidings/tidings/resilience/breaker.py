"""A circuit breaker per provider, shared by every container through DynamoDB (Powertools utility).

Powertools keeps the state (CLOSED / OPEN / HALF_OPEN, opened_at, the half-open probe lock) in one
CIRCUIT_BREAKER_TABLE item per provider, so a container that never saw a failure still fails fast
once another one tripped the breaker, and exactly one probe runs when the recovery time is over.

Only transient provider failures count (5xx, network, timeouts): a declined card or a 400 is not the
provider's fault, and a 429 is handled by the rate limiter and Retry-After. An open breaker raises
:class:`~tidings.errors.CircuitOpen` without any request. Every state change is logged and metered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from aws_lambda_powertools.utilities.circuit_breaker import (
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    CircuitTransition,
)

# The orchestrator of the Powertools utility; used directly (instead of the decorator) so the breaker
# reads time from an injectable clock and tests can move through the recovery window without waiting.
from aws_lambda_powertools.utilities.circuit_breaker.base import CircuitBreakerHandler
from aws_lambda_powertools.utilities.circuit_breaker.persistence import CircuitBreakerDynamoDBPersistence

from tidings.errors import CircuitOpen, NetworkError, ProviderTimeout, ProviderUnavailable
from tidings.observability import emit_metric, logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.circuit_breaker.persistence.base import (
        CircuitBreakerPersistenceLayer,
    )

    from tidings.config import Settings

T = TypeVar("T")

#: The failures that say "the provider is unhealthy".
COUNTED_FAILURES = (ProviderUnavailable, NetworkError, ProviderTimeout)

_STATE_METRIC = {"CLOSED": "CircuitClosed", "OPEN": "CircuitOpened", "HALF_OPEN": "CircuitHalfOpened"}


class _ClockedHandler(CircuitBreakerHandler):
    wall_clock: Callable[[], float] = time.time

    # Powertools reads time through this one (static) method; here it reads the instance's clock.
    def _now(self) -> int:  # type: ignore[override]
        return int(self.wall_clock())


class ProviderCircuitBreaker:
    def __init__(
        self,
        provider: str,
        persistence: CircuitBreakerPersistenceLayer,
        config: CircuitBreakerConfig,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.provider = provider
        self.persistence = persistence
        self.config = config
        self.wall_clock = wall_clock

    @classmethod
    def from_settings(
        cls,
        provider: str,
        settings: Settings,
        *,
        dynamodb_client: Any | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> ProviderCircuitBreaker:
        persistence = CircuitBreakerDynamoDBPersistence(
            table_name=settings.require("circuit_breaker_table"), boto3_client=dynamodb_client
        )
        config = CircuitBreakerConfig(
            failure_threshold=settings.breaker_failure_threshold,
            recovery_timeout=settings.breaker_recovery_seconds,
            success_threshold=settings.breaker_success_threshold,
            handled_exceptions=COUNTED_FAILURES,
            local_cache_max_age=settings.breaker_cache_seconds,
        )
        return cls(provider, persistence, config, wall_clock)

    def call(self, function: Callable[[], T]) -> T:
        handler = _ClockedHandler(
            function=function,
            name=self.provider,
            config=self.config,
            persistence_store=self.persistence,
            on_transition=self._on_transition,
        )
        handler.wall_clock = self.wall_clock
        try:
            return cast(T, handler.handle())
        except CircuitBreakerOpenError as exc:
            opened_at = exc.circuit.opened_at if exc.circuit else None
            logger.info("circuit open, call rejected", provider=self.provider, opened_at=opened_at)
            emit_metric("CircuitRejected", provider=self.provider)
            raise CircuitOpen(
                "circuit breaker open: failing fast without calling the provider",
                provider=self.provider,
                code="circuit_open",
            ) from None

    def _on_transition(self, transition: CircuitTransition) -> None:
        logger.warning(
            "circuit breaker changed state",
            provider=self.provider,
            from_state=str(transition.from_state),
            to_state=str(transition.to_state),
            opened_at=transition.opened_at,
        )
        emit_metric(_STATE_METRIC[str(transition.to_state)], provider=self.provider)
