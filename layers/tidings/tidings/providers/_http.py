"""The HTTP path shared by the Stripe, SendGrid and Twilio clients.

One ``httpx.Client`` per provider per container (connection reuse), a timeout on every request
(connect and read, TIDINGS_HTTP_TIMEOUT_SECONDS, never past the call budget), every attempt through
:class:`~tidings.resilience.caller.ResilientCaller`, transport failures typed, one redacted log line
and metrics per attempt (the request by its shape: method, path, status, ids, field names and sizes,
never its content), and one credential refresh on AuthenticationFailed.
"""

from __future__ import annotations

import json as _json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from tidings.errors import AuthenticationFailed, NetworkError, ProviderError, ProviderTimeout
from tidings.observability import emit_metric, logger, redact
from tidings.providers._attempts import AttemptLog
from tidings.providers._errors import rate_limit_headroom
from tidings.resilience.budget import CallBudget
from tidings.resilience.caller import Attempt, ResilientCaller


@dataclass(frozen=True)
class ProviderResponse:
    response: httpx.Response
    attempts: int

    def json(self) -> Any:
        return self.response.json()


class HttpProvider:
    """One provider's HTTP endpoint; the provider modules supply only what is truly theirs."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        caller: ResilientCaller,
        credentials: Callable[[bool], Any],
        authenticate: Callable[[Any], Mapping[str, str]],
        map_error: Callable[[httpx.Response], ProviderError],
        request_id_header: str | None = None,
        http: httpx.Client | None = None,
        timeout_seconds: float = 10.0,
        connect_timeout_seconds: float = 3.0,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.caller = caller
        self._credentials = credentials
        self._authenticate = authenticate
        self._map_error = map_error
        self.request_id_header = request_id_header
        self.http = http or httpx.Client(http2=False, follow_redirects=False)
        self.timeout_seconds = timeout_seconds
        self.connect_timeout_seconds = connect_timeout_seconds

    def request(
        self,
        method: str,
        path: str | Callable[[Any], str],
        *,
        endpoint: str,
        form: Mapping[str, str] | Callable[[Any], Mapping[str, str]] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        success: tuple[int, ...] = (200,),
    ) -> ProviderResponse:
        """Send one logical request (retried per the policy); raises a typed error on failure.

        ``path`` and ``form`` may be functions of the credentials (Twilio puts its account in both).
        """
        budget = self.caller.start_budget()  # one budget, shared by the retry with fresh credentials
        credentials = self._credentials(False)
        try:
            return self._call(credentials, method, path, endpoint, form, json, headers, success, budget)
        except AuthenticationFailed:
            fresh = self._credentials(True)
            if fresh == credentials:
                raise  # the stored secret is the one refused: nothing to gain from a second try
            logger.info("retrying with refreshed credentials", provider=self.provider, endpoint=endpoint)
            emit_metric("CredentialsRefreshed", provider=self.provider)
            return self._call(fresh, method, path, endpoint, form, json, headers, success, budget)

    def _call(
        self,
        credentials: Any,
        method: str,
        path: str | Callable[[Any], str],
        endpoint: str,
        form: Mapping[str, str] | Callable[[Any], Mapping[str, str]] | None,
        json: Any,
        headers: Mapping[str, str] | None,
        success: tuple[int, ...],
        budget: CallBudget,
    ) -> ProviderResponse:
        attempts = {"count": 0}
        url_path = path(credentials) if callable(path) else path
        body = form(credentials) if callable(form) else form
        request_headers = {**self._authenticate(credentials), **(headers or {})}

        def attempt(info: Attempt) -> httpx.Response:
            attempts["count"] = info.number
            return self._send(method, url_path, endpoint, body, json, request_headers, success, info)

        response = self.caller.call(attempt, endpoint=endpoint, budget=budget)
        return ProviderResponse(response=response, attempts=attempts["count"])

    def _send(
        self,
        method: str,
        path: str,
        endpoint: str,
        form: Mapping[str, str] | None,
        json: Any,
        headers: Mapping[str, str],
        success: tuple[int, ...],
        info: Attempt,
    ) -> httpx.Response:
        read_timeout = max(0.001, min(self.timeout_seconds, info.time_left))
        timeout = httpx.Timeout(read_timeout, connect=min(self.connect_timeout_seconds, read_timeout))
        log = AttemptLog(self.provider, endpoint, info.number, method=method, path=path)
        try:
            response = self.http.request(
                method, self.base_url + path, data=form, json=json, headers=headers, timeout=timeout
            )
        except httpx.TimeoutException as exc:
            log.broke(type(exc).__name__)
            raise ProviderTimeout(
                f"no response in time ({type(exc).__name__})", provider=self.provider, code="timeout"
            ) from None
        except httpx.TransportError as exc:
            log.broke(type(exc).__name__)
            raise NetworkError(
                f"connection failed ({type(exc).__name__})", provider=self.provider, code="network"
            ) from None
        self._observe_headroom(response)
        answer = {
            "status": response.status_code,
            "request_id": response.headers.get(self.request_id_header) if self.request_id_header else None,
            **request_shape(form if form is not None else json),
            "response_bytes": len(response.content),
        }
        if response.status_code in success:
            log.succeeded(**answer)
            return response
        error = self._map_error(response)
        log.failed(error, **answer, response=error_codes(response))
        raise error

    def _observe_headroom(self, response: httpx.Response) -> None:
        """Every answer's rate-limit headers (success or error) reach the provider's shared bucket."""
        limiter = self.caller.limiter
        if limiter is None:
            return
        headroom = rate_limit_headroom(response.headers, self.caller.timing.wall())
        if headroom is not None:
            limiter.observe(headroom)


#: The fields of a provider's error body that identify the error without repeating what was sent.
_ERROR_CODE_FIELDS = frozenset(
    {"code", "type", "decline_code", "param", "field", "status", "more_info", "error_code", "reason"}
)


def request_shape(body: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a request was, never what it said: its field names and its size in bytes.

    A receipt's text, a name or an SMS body is the customer's own; a log keeps that a ``text`` of
    1,204 bytes was sent, not what it read.
    """
    if body is None:
        return {"request_fields": [], "request_bytes": 0}
    fields = sorted(str(name) for name in body)
    return {"request_fields": fields, "request_bytes": len(_json.dumps(body, default=str).encode())}


def error_codes(response: httpx.Response) -> dict[str, Any]:
    """A provider's error body reduced to its codes (Stripe ``{"error": {...}}``, SendGrid ``{"errors":
    [...]}``, Twilio flat): enough to tell one error from another, none of its free text."""
    try:
        body = response.json()
    except ValueError:
        return {}
    found: dict[str, Any] = {}
    queue = [body]
    while queue and len(found) < len(_ERROR_CODE_FIELDS):
        value = queue.pop(0)
        if isinstance(value, list):
            queue.extend(value[:3])
        elif isinstance(value, dict):
            for key, item in value.items():
                if key in _ERROR_CODE_FIELDS and isinstance(item, str | int) and key not in found:
                    found[key] = redact(item) if isinstance(item, str) else item
                elif isinstance(item, dict | list):
                    queue.append(item)
    return found
