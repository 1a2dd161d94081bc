"""The typed failures of every provider call.

The class name of each error is a contract: a Lambda handler that lets one of these escape reports it
as its ``errorType``, and the state machine's ``Retry`` and ``Catch`` blocks match on those names.
Rename a class and you change the saga's behaviour; the names are listed in docs/errors.md.

Messages never contain secrets, card numbers, e-mail addresses or phone numbers: build them from
provider codes and field names only.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ProviderError(Exception):
    """Base of every provider failure.

    ``retryable`` says whether the same request may succeed later without any change to it.
    """

    retryable: ClassVar[bool] = False
    #: Coarse category used for metrics and for the retry policy.
    category: ClassVar[str] = "provider"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status
        self.code = code
        self.request_id = request_id
        #: The provider's own word on retrying this request (Stripe-Should-Retry), if it gave one.
        self.should_retry: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """A log- and DLQ-safe description (no personal data: messages are built without any)."""
        return {
            "error_type": type(self).__name__,
            "category": self.category,
            "message": self.message,
            "provider": self.provider,
            "status": self.status,
            "code": self.code,
            "request_id": self.request_id,
            "retryable": self.retryable,
        }

    def __str__(self) -> str:
        parts = [f"{self.provider}: {self.message}"]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.code:
            parts.append(f"code={self.code}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


# --- permanent: the same request will fail again --------------------------------------------------


class PaymentDeclined(ProviderError):
    """The card issuer (or the provider's fraud checks) refused the payment."""

    category = "declined"

    def __init__(self, message: str, *, decline_code: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.decline_code = decline_code

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "decline_code": self.decline_code}


class PaymentActionRequired(ProviderError):
    """The payment needs the customer to act (3-D Secure); not a failure of the provider."""

    category = "action_required"

    def __init__(self, message: str, *, payment_intent_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.payment_intent_id = payment_intent_id

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "payment_intent_id": self.payment_intent_id}


class AuthenticationFailed(ProviderError):
    """The credential was refused (401) or lacks permission (403)."""

    category = "auth"


class InvalidRequest(ProviderError):
    """The provider refused the request's content (400/413/422); ``field`` names what it blamed."""

    category = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "field": self.field}


class ResourceNotFound(ProviderError):
    """The object addressed does not exist at the provider (404)."""

    category = "not_found"


class IdempotencyConflict(ProviderError):
    """An idempotency key was reused with different parameters, or is still in flight (409)."""

    category = "idempotency_conflict"


class ProviderSwitchedOff(ProviderError):
    """The live configuration sends this channel through its fallback only (``ses_only``, ``sns_only``,
    for example during a provider incident): the provider was not called. Not retried; the state
    machine's catch-all moves on to the fallback, as after an outage."""

    category = "switched_off"


# --- transient: the same request may succeed later -------------------------------------------------


class TransientProviderError(ProviderError):
    """Base of the failures worth retrying with the same request."""

    retryable = True
    category = "transient"


class RateLimited(TransientProviderError):
    """The provider said slow down (429); ``retry_after`` is its hint in seconds, when it gave one."""

    category = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "retry_after": self.retry_after}


class ProviderUnavailable(TransientProviderError):
    """The provider answered with a server error (5xx), or its circuit breaker is open."""

    category = "unavailable"


class CircuitOpen(ProviderUnavailable):
    """Failed fast without calling the provider: its shared circuit breaker is open."""

    category = "circuit_open"


class NetworkError(TransientProviderError):
    """Connecting failed, or the connection broke before a full response arrived."""

    category = "network"


class ProviderTimeout(TransientProviderError):
    """No answer in time: a request timeout, or the call's total time budget is spent."""

    category = "timeout"


# --- not a provider's: the saga's own refusal ------------------------------------------------------


class RecipientSuppressed(Exception):
    """A required channel's recipient is on the suppression list (opted out, unsubscribed, bounced):
    nothing was sent and no provider was called. The saga undoes the payment, as for a refusal."""

    def __init__(self, channel: str, reason: str) -> None:
        super().__init__(f"the {channel} recipient is suppressed ({reason})")
        self.channel = channel
        self.reason = reason

    def to_dict(self) -> dict[str, Any]:
        return {"error_type": type(self).__name__, "channel": self.channel, "reason": self.reason}


class NotificationCancelled(Exception):
    """The shop cancelled the notification while its saga waited (3-D Secure, a required SMS on the
    outage queue): the notify API fails the waiting task with this name, and the saga cancels the
    payment, or refunds it when it was taken, and ends ``cancelled``."""

    def __init__(self, notification_id: str) -> None:
        super().__init__(f"notification {notification_id} was cancelled by the shop")
        self.notification_id = notification_id

    def to_dict(self) -> dict[str, Any]:
        return {"error_type": type(self).__name__, "notification_id": self.notification_id}


#: Every error type by name, for the state machine contract test and for docs.
ERROR_TYPES: dict[str, type[ProviderError]] = {
    cls.__name__: cls
    for cls in (
        ProviderError,
        PaymentDeclined,
        PaymentActionRequired,
        AuthenticationFailed,
        InvalidRequest,
        ResourceNotFound,
        IdempotencyConflict,
        ProviderSwitchedOff,
        TransientProviderError,
        RateLimited,
        ProviderUnavailable,
        CircuitOpen,
        NetworkError,
        ProviderTimeout,
    )
}

#: Names the state machine retries on (a subclass raised by a handler reports its own name, so each
#: transient class is listed, not only the base).
TRANSIENT_ERROR_NAMES: tuple[str, ...] = (
    "RateLimited",
    "ProviderUnavailable",
    "CircuitOpen",
    "NetworkError",
    "ProviderTimeout",
)

#: The saga's own typed refusals (no provider called): matched by Catch like the provider errors.
SAGA_ERROR_TYPES: dict[str, type[Exception]] = {
    RecipientSuppressed.__name__: RecipientSuppressed,
    NotificationCancelled.__name__: NotificationCancelled,
}
