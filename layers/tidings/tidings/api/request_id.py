"""The request id of one API call: the client's ``X-Request-Id`` when it is a safe one, else API Gateway's.

A client may name its request (1-128 characters of ``A-Z a-z 0-9 . _ : -``), so its own logs and ours
share one id; anything else (empty, longer, a space, a quote, CR/LF, non-ASCII) is refused with 400
``invalid_request_id`` rather than logged or echoed. Without the header the id is API Gateway's
``requestContext.requestId``. Every answer carries it back in ``X-Request-Id``.
"""

import re
from typing import Any

HEADER = "X-Request-Id"
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class InvalidRequestId(ValueError):
    """The ``X-Request-Id`` header is not 1-128 characters of ``A-Z a-z 0-9 . _ : -``."""


def request_id(event: dict[str, Any]) -> str:
    """The client's valid ``X-Request-Id``, or API Gateway's request id when the header is absent."""
    headers = {str(name).lower(): value for name, value in (event.get("headers") or {}).items()}
    given = headers.get(HEADER.lower())
    if given is None:
        return str((event.get("requestContext") or {}).get("requestId") or "")
    if not isinstance(given, str) or not _VALID.fullmatch(given):
        raise InvalidRequestId(f"{HEADER} must be 1-128 characters of A-Z a-z 0-9 . _ : -")
    return given


def with_request_id(response: dict[str, Any], value: str) -> dict[str, Any]:
    """The response with ``X-Request-Id`` set (replacing any casing of it the route set)."""
    if not value:
        return response
    headers = {k: v for k, v in (response.get("headers") or {}).items() if k.lower() != HEADER.lower()}
    return {**response, "headers": {**headers, HEADER: value}}
