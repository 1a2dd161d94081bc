"""Turning a provider's HTTP error response into the typed error (shared helpers).

Each provider module reads its own error body (Stripe ``error.type/code/decline_code/param``,
SendGrid ``errors[].field``, Twilio ``code``) and calls :func:`error_for_status` with what it found;
the HTTP status picks the class, so every provider maps the same way.

Nothing heavy is imported here at module level (httpx for types only; the redaction and the rate-limit
model where they are used): the provider modules import this one, and importing a provider's client
stays lighter than importing its official SDK (docs/benchmarks.md, section 2).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tidings.errors import (
    AuthenticationFailed,
    IdempotencyConflict,
    InvalidRequest,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    ResourceNotFound,
)

if TYPE_CHECKING:
    import httpx

    from tidings.resilience.rate_limit import ProviderHeadroom


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The provider's wait hint in seconds: ``Retry-After`` (seconds or HTTP date), else a reset header.

    SendGrid sends ``X-RateLimit-Reset`` as an epoch second; the IETF draft ``RateLimit-Reset`` (and
    some gateways' ``X-RateLimit-Reset-After``) is a delta in seconds.
    """
    now = time.time() if now is None else now
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value.strip() else None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - now)
    for name in ("x-ratelimit-reset", "ratelimit-reset", "x-ratelimit-reset-after"):
        value = headers.get(name)
        if not value:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        # An epoch timestamp is far larger than any sensible delta.
        return max(0.0, number - now) if number > 1_000_000_000 else max(0.0, number)
    return None


def rate_limit_headroom(headers: Mapping[str, str], now: float) -> ProviderHeadroom | None:
    """The provider's own limit as its response states it, on any status: ``X-RateLimit-Limit``,
    ``-Remaining`` and ``-Reset`` (SendGrid: an epoch second), or the IETF draft's ``RateLimit-Limit``,
    ``-Remaining`` and ``-Reset`` (a delta). None when a provider does not send all three (Stripe, Twilio)."""
    from tidings.resilience.rate_limit import ProviderHeadroom

    for prefix in ("x-ratelimit-", "ratelimit-"):
        values = [headers.get(prefix + name) for name in ("limit", "remaining", "reset")]
        if any(value is None for value in values):
            continue
        try:
            limit, remaining, reset = (float(str(value).split(",")[0].split(";")[0]) for value in values)
        except ValueError:
            continue
        reset_at = reset if reset > 1_000_000_000 else now + reset
        return ProviderHeadroom(limit=limit, remaining=remaining, reset_at=reset_at)
    return None


def error_for_status(
    provider: str,
    status: int,
    message: str,
    *,
    code: str | None = None,
    request_id: str | None = None,
    field: str | None = None,
    retry_after: float | None = None,
) -> ProviderError:
    """The typed error for an HTTP status; ``message`` is redacted before it is stored."""
    from tidings.observability import redact

    common: dict[str, Any] = {"provider": provider, "status": status, "code": code, "request_id": request_id}
    message = redact(message)
    if status == 429:
        return RateLimited(message, retry_after=retry_after, **common)
    if status in (401, 403):
        return AuthenticationFailed(message, **common)
    if status == 404:
        return ResourceNotFound(message, **common)
    if status == 409:
        return IdempotencyConflict(message, **common)
    if status == 408:
        return ProviderTimeout(message, **common)
    if status >= 500:
        return ProviderUnavailable(message, **common)
    return InvalidRequest(message, field=field, **common)
