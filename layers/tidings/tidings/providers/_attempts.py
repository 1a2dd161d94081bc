"""One attempt of a provider call, logged and metered the same way for httpx and boto3.

Every attempt (a retry is a new attempt) writes one redacted log line, ``provider request succeeded``,
``provider request failed`` (an answer that is an error) or ``provider request broke`` (no answer), with
``provider``, ``endpoint``, ``attempt``, ``correlation_id`` and ``latency_ms``, and emits
``ProviderLatency`` (ms) and ``ProviderCallSucceeded`` / ``ProviderCallFailed`` (dimensions provider,
endpoint and, on failure, category). :mod:`tidings.providers._http` and :mod:`tidings.providers._aws`
add only what their transport knows (method, path, status, request id).
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from tidings.errors import ProviderError
from tidings.observability import emit_metric, logger


class AttemptLog:
    """Started when the attempt goes out; ends with exactly one of the three outcomes."""

    def __init__(self, provider: str, endpoint: str, attempt: int, **fields: Any) -> None:
        self.provider = provider
        self.endpoint = endpoint
        self.context = {
            "provider": provider,
            "endpoint": endpoint,
            **fields,
            "attempt": attempt,
            "correlation_id": logger.get_correlation_id(),
        }
        self._started = time.perf_counter()

    def _latency_ms(self) -> float:
        latency_ms = round((time.perf_counter() - self._started) * 1000, 1)
        emit_metric(
            "ProviderLatency",
            value=latency_ms,
            unit=MetricUnit.Milliseconds,
            provider=self.provider,
            endpoint=self.endpoint,
        )
        return latency_ms

    def succeeded(self, **fields: Any) -> None:
        logger.info("provider request succeeded", **self.context, latency_ms=self._latency_ms(), **fields)
        emit_metric("ProviderCallSucceeded", provider=self.provider, endpoint=self.endpoint)

    def failed(self, error: ProviderError, **fields: Any) -> None:
        """The provider answered, with an error (typed as ``error``)."""
        latency_ms = self._latency_ms()
        logger.warning(
            "provider request failed", **self.context, latency_ms=latency_ms, **fields, error=error.to_dict()
        )
        self._call_failed(error.category)

    def broke(self, reason: str) -> None:
        """No answer came (a timeout, a refused or dropped connection)."""
        latency_ms = round((time.perf_counter() - self._started) * 1000, 1)
        logger.warning("provider request broke", **self.context, latency_ms=latency_ms, reason=reason)
        self._call_failed("network")

    def _call_failed(self, category: str) -> None:
        emit_metric("ProviderCallFailed", provider=self.provider, endpoint=self.endpoint, category=category)
