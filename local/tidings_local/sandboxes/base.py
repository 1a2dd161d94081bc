"""What every provider sandbox builds on: the request and response, the ``Provider`` base class, and the
services of its sandbox a provider may use (``SandboxServices``).

The server (``core.Sandbox``) depends on this module and on the providers; the providers depend on this
module and never on the server, so the sandboxes import in one direction.
"""

from __future__ import annotations

import json
import secrets
import string
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs

from tidings_local.sandboxes.ratelimit import Decision, TokenBucket
from tidings_local.sandboxes.webhooks import WebhookDispatcher

_ALNUM = string.ascii_letters + string.digits


class SandboxServices(Protocol):
    """The parts of its sandbox a provider uses (``core.Sandbox`` provides them)."""

    webhooks: WebhookDispatcher
    limiter: TokenBucket

    @property
    def base_url(self) -> str: ...

    def pause(self, request: Request) -> None:
        """Serve the request's injected latency."""


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Response:
        body = json.dumps(payload, indent=2).encode() + b"\n"
        return cls(status, body, [("Content-Type", "application/json"), *(headers or [])])

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def set_header(self, name: str, value: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        self.headers.append((name, value))


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    body_size: int
    received_at: float
    #: Seconds of injected latency still to be served when the provider starts working.
    latency: float = 0.0
    #: The provider's id for this request (Stripe ``req_...``, Twilio ``RQ...``), once assigned.
    request_id: str | None = None
    form: Any = None
    json: Any = None
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def query_params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    def json_body(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


class Provider:
    """What differs between providers. Subclasses override what they need."""

    name = "provider"
    server_header = "sandbox"
    max_body_bytes = 30 * 1024 * 1024

    def __init__(self, sandbox: SandboxServices) -> None:
        self.sandbox = sandbox
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget every object created and restore the documented credentials."""

    def parse(self, request: Request) -> None:
        """Fill ``request.form`` / ``request.json`` (for recording) from the raw body."""

    def handle(self, request: Request) -> Response:
        self.sandbox.pause(request)
        return self.route(request)

    def route(self, request: Request) -> Response:
        raise NotImplementedError

    def error_response(self, status: int, retry_after: int | None = None) -> Response:
        """The provider's own body for an injected 4xx/5xx (and 429 with Retry-After)."""
        raise NotImplementedError

    def rate_limited(self, decision: Decision) -> Response:
        return self.error_response(429, decision.retry_after)

    def too_large(self) -> Response:
        return self.error_response(413)

    def finalize(self, request: Request, response: Response, decision: Decision | None) -> None:
        """Add the headers the provider puts on every response (request ids, rate-limit state)."""

    def control(self, request: Request, subpath: str) -> Response | None:
        """Provider-specific control endpoints under /_sandbox/<name>/."""
        return None

    def set_credentials(self, values: dict[str, Any]) -> None:
        raise ValueError("this sandbox has no settable credentials")

    def describe(self) -> dict[str, Any]:
        return {}


def random_alnum(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def random_hex(length: int) -> str:
    return secrets.token_hex(length // 2 + 1)[:length]
