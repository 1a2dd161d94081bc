"""A total time budget per provider call, so retries never outlive the Lambda invocation.

The budget is the smaller of TIDINGS_CALL_BUDGET_SECONDS and the invocation's remaining time minus
TIDINGS_LAMBDA_TIME_RESERVE_SECONDS (kept for the handler to map the error and return). Handlers give
the layer their context once per invocation with :func:`bind_lambda_context`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class _LambdaContext(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


_current_context: _LambdaContext | None = None


def bind_lambda_context(context: Any | None) -> None:
    """Tell the layer about the running invocation (its remaining time bounds every call budget)."""
    global _current_context
    _current_context = context if hasattr(context, "get_remaining_time_in_millis") else None


def current_lambda_context() -> Any | None:
    return _current_context


class CallBudget:
    """Seconds left for one provider call, retries and waits included."""

    def __init__(self, seconds: float, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self.seconds = max(0.0, seconds)
        self._deadline = monotonic() + self.seconds

    @classmethod
    def start(
        cls,
        *,
        limit_seconds: float,
        reserve_seconds: float,
        monotonic: Callable[[], float],
        context: Any | None = None,
    ) -> CallBudget:
        context = context if context is not None else _current_context
        seconds = limit_seconds
        if context is not None:
            seconds = min(seconds, context.get_remaining_time_in_millis() / 1000 - reserve_seconds)
        return cls(seconds, monotonic)

    def remaining(self) -> float:
        return max(0.0, self._deadline - self._monotonic())

    @property
    def spent(self) -> bool:
        return self.remaining() <= 0
