"""Typed errors: one class per machine-readable ``code`` of the API's error bodies, under one per status.

Catch :class:`TidingsError` for everything, :class:`ApiError` for any refusal the API answered, or the
precise class (:class:`OrderAlreadyCharged`, :class:`RecipientSuppressed`, ...) for one case. The API never
echoes personal data in its error bodies, and neither do these messages.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import ValidationError as _PydanticValidationError

from tidings_sdk.models import BulkAccepted, ErrorBody, ErrorItem


class TidingsError(Exception):
    """Anything the SDK raises."""


class TransportFailed(TidingsError):
    """No answer from the API (connection refused, timed out) after every try."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class UnexpectedAnswer(TidingsError):
    """A 2xx answer whose body is not what the API's document describes for it."""

    def __init__(self, message: str, response: httpx.Response) -> None:
        super().__init__(message)
        self.response = response
        self.status = response.status_code


class ApiError(TidingsError):
    """The API refused the request: ``status``, the body's ``code`` and ``message``, and the whole
    ``body`` (fields the code adds, such as ``notification_id`` for ``order_already_charged``)."""

    status: int = 0

    def __init__(self, response: httpx.Response, body: ErrorBody, attempts: int = 1) -> None:
        super().__init__(f"{response.status_code} {body.code}: {body.message}")
        self.response = response
        self.status = response.status_code
        self.body = body
        self.code = body.code
        self.message = body.message
        self.attempts = attempts
        self.request_id = response.headers.get("x-request-id")

    @property
    def errors(self) -> list[ErrorItem]:
        return list(self.body.errors or [])

    @property
    def retry_after_seconds(self) -> float | None:
        """The wait the API asked for (``Retry-After``, or the body's ``retry_after_seconds``)."""
        from tidings_sdk.retry import retry_after_seconds

        header = retry_after_seconds(self.response.headers.get("retry-after"))
        return header if header is not None else self.body.retry_after_seconds


class BadRequest(ApiError):
    """400: ``invalid_query`` (a cursor that does not continue the query), ``body_too_deep``, ..."""

    status = 400


class Unauthorized(ApiError):
    """401: no valid bearer token."""

    status = 401


class Forbidden(ApiError):
    """403: the token lacks the route's scope."""

    status = 403


class NotFound(ApiError):
    """404: no such notification or bulk request, or not the caller's."""

    status = 404


class Conflict(ApiError):
    status = 409


class IdempotencyInProgress(Conflict):
    """409 ``idempotency_in_progress``: the same key's first request is still being handled (retried)."""


class OrderAlreadyCharged(Conflict):
    """409 ``order_already_charged``: the order already has a notification holding a charge; its
    ``notification_id`` and ``status_url``. Send ``new_charge=True`` to charge again on purpose."""

    @property
    def notification_id(self) -> str | None:
        return self.body.notification_id

    @property
    def status_url(self) -> str | None:
        return self.body.status_url


class NotCharged(Conflict):
    """409 ``not_charged``: a refund of a notification that never took a payment."""


class AlreadyRefunded(Conflict):
    """409 ``already_refunded``: nothing is left to refund."""


class SagaInProgress(Conflict):
    """409 ``saga_in_progress``: a refund before the saga ended (cancel it, or wait for its end)."""


class NotCancellable(Conflict):
    """409 ``already_finished`` or ``not_waiting``: a cancel of a saga that is not waiting."""


class PayloadTooLarge(ApiError):
    """413 ``payload_too_large``, or ``bulk_exceeds_quota`` (more items than the quota holds at once)."""

    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


class ValidationFailed(ApiError):
    """422 ``validation_error``: every problem at once, in ``errors`` (locations and types, no values)."""

    status = 422


class IdempotencyKeyReused(ValidationFailed):
    """422 ``idempotency_key_reused``: the key was already used with another request."""


class RecipientSuppressed(ValidationFailed):
    """422 ``recipient_suppressed``: a ``required`` channel's recipient is on the suppression list;
    nothing was stored or charged."""

    @property
    def channel(self) -> str | None:
        return _extra(self.body, "channel")

    @property
    def reason(self) -> str | None:
        return _extra(self.body, "reason")


class RefundExceedsRemaining(ValidationFailed):
    """422 ``refund_exceeds_remaining``: a partial refund above what is left (``remaining``)."""

    @property
    def remaining(self) -> int | None:
        value = getattr(self.body, "remaining", None)
        return None if value is None else int(value)


class BulkRejected(ValidationFailed):
    """422 from ``POST /notifications/bulk`` with every item rejected: the per-item ``result``."""

    def __init__(self, response: httpx.Response, result: BulkAccepted, attempts: int = 1) -> None:
        body = ErrorBody(message="every item of the bulk request was rejected", code="bulk_rejected")
        super().__init__(response, body, attempts)
        self.result = result


class RateLimited(ApiError):
    """429: API Gateway's throttling (``throttled``) after every try."""

    status = 429


class QuotaExceeded(RateLimited):
    """429 ``quota_exceeded``: the client's send quota is spent (``retry_after_seconds``, ``quota``)."""


class ServerError(ApiError):
    """5xx after every try."""

    status = 500


_BY_CODE: dict[str, type[ApiError]] = {
    "idempotency_in_progress": IdempotencyInProgress,
    "order_already_charged": OrderAlreadyCharged,
    "idempotency_key_reused": IdempotencyKeyReused,
    "recipient_suppressed": RecipientSuppressed,
    "quota_exceeded": QuotaExceeded,
    "not_charged": NotCharged,
    "already_refunded": AlreadyRefunded,
    "saga_in_progress": SagaInProgress,
    "already_finished": NotCancellable,
    "not_waiting": NotCancellable,
    "refund_exceeds_remaining": RefundExceedsRemaining,
}
_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationFailed,
    429: RateLimited,
}
#: The code of an answer without one: API Gateway's own ({"message": "Forbidden"}), or a proxy's.
_GATEWAY_CODES = {401: "unauthorized", 403: "forbidden", 429: "throttled"}


def error_body(response: httpx.Response) -> ErrorBody:
    """The answer's error body; one the API Gateway or a proxy wrote is given a code from its status."""
    try:
        payload: Any = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        try:
            if "code" in payload:
                return ErrorBody.model_validate(payload)
            message = str(payload.get("message") or response.reason_phrase)
            return ErrorBody(message=message, code=_default_code(response.status_code))
        except _PydanticValidationError:
            pass
    return ErrorBody(message=response.reason_phrase or "error", code=_default_code(response.status_code))


def error_for(response: httpx.Response, attempts: int = 1) -> ApiError:
    """The typed error for a refusal: by the body's code first, then by the status."""
    body = error_body(response)
    status = response.status_code
    cls = _BY_CODE.get(body.code) or _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    return cls(response, body, attempts)


def _default_code(status: int) -> str:
    return _GATEWAY_CODES.get(status) or ("server_error" if status >= 500 else f"http_{status}")


def _extra(body: ErrorBody, name: str) -> str | None:
    value = (body.model_extra or {}).get(name)
    return None if value is None else str(value)
