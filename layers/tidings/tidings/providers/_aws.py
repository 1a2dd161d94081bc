"""Amazon SES and SNS calls through the same resilience path as the HTTP providers.

botocore's own retries are switched off (``total_max_attempts=1``) so the one retry policy decides,
and its exceptions are mapped onto :mod:`tidings.errors` here, once for both services.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from tidings.errors import (
    AuthenticationFailed,
    InvalidRequest,
    NetworkError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    ResourceNotFound,
)
from tidings.observability import redact
from tidings.providers._attempts import AttemptLog
from tidings.resilience.caller import Attempt, ResilientCaller

T = TypeVar("T")

_THROTTLED = {"Throttling", "ThrottlingException", "TooManyRequestsException", "ThrottledException"}
_AUTH = {
    "AccessDenied",
    "AccessDeniedException",
    "AuthorizationError",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "AuthorizationErrorException",
}
_NOT_FOUND = {"NotFoundException", "NotFound", "ResourceNotFoundException"}
_UNAVAILABLE = {
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
    "InternalErrorException",
    "ServiceUnavailableException",
}


def boto_client(service: str, *, timeout_seconds: float, connect_timeout_seconds: float) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=connect_timeout_seconds,
        read_timeout=timeout_seconds,
    )
    return boto3.client(service, config=config)  # type: ignore[call-overload]  # any service name


def aws_error(provider: str, exc: Exception) -> ProviderError:
    """The typed error for a botocore exception (messages redacted: SES echoes addresses)."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError):
        return ProviderTimeout("no response in time", provider=provider, code=type(exc).__name__)
    if isinstance(exc, EndpointConnectionError | BotoConnectionError):
        return NetworkError("connection failed", provider=provider, code=type(exc).__name__)
    if not isinstance(exc, ClientError):
        return ProviderUnavailable(f"unexpected {type(exc).__name__}", provider=provider)
    error = exc.response.get("Error", {})
    meta = exc.response.get("ResponseMetadata", {})
    code = error.get("Code")
    status = meta.get("HTTPStatusCode")
    common: dict[str, Any] = {
        "provider": provider,
        "status": status,
        "code": code,
        "request_id": meta.get("RequestId"),
    }
    message = redact(error.get("Message") or code or "aws error")
    if code in _THROTTLED or status == 429:
        return RateLimited(message, **common)
    if code in _AUTH or status in (401, 403):
        return AuthenticationFailed(message, **common)
    if code in _NOT_FOUND or status == 404:
        return ResourceNotFound(message, **common)
    if code in _UNAVAILABLE or (status is not None and status >= 500):
        return ProviderUnavailable(message, **common)
    return InvalidRequest(message, **common)


def call_aws[T](
    caller: ResilientCaller, provider: str, endpoint: str, operation: Callable[[], T]
) -> tuple[T, int]:
    """Run one AWS API operation through the resilience path; returns (result, attempts)."""
    attempts = {"count": 0}

    def attempt(info: Attempt) -> T:
        attempts["count"] = info.number
        log = AttemptLog(provider, endpoint, info.number)
        try:
            result = operation()
        except Exception as exc:
            error = aws_error(provider, exc)
            log.failed(error)
            raise error from None
        log.succeeded()
        return result

    result = caller.call(attempt, endpoint=endpoint)
    return result, attempts["count"]
