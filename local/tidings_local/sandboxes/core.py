"""The HTTP server every provider sandbox runs on: faults, rate limit, recording and the control API.

A provider (Stripe, SendGrid, Twilio) only says how it authenticates, routes and words its errors;
this module decides, for each request, whether a fault or the rate limiter answers first.

Order per request: record it, apply a terminal fault (outage, status, reset, hang), apply the rate
limit, then let the provider handle it (latency faults pause inside the provider's work, so a slow
Stripe request holds its idempotency key like a slow real one).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
import traceback
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tidings_local.sandboxes.base import Provider, Request, Response
from tidings_local.sandboxes.faults import DEFAULT_HANG_SECONDS, Fault, FaultBook, FaultError
from tidings_local.sandboxes.providers import provider_class
from tidings_local.sandboxes.ratelimit import TokenBucket
from tidings_local.sandboxes.recording import Recorder, redact_headers
from tidings_local.sandboxes.webhooks import WebhookDispatcher

if TYPE_CHECKING:
    from tidings_local.sandboxes.control import SandboxClient

CONTROL_PREFIX = "/_sandbox/"
#: Bodies above this are read and discarded, never kept in memory or in the request log.
RECORDED_BODY_LIMIT = 1_000_000


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Hung and keep-alive connections must not keep stop() waiting.
    block_on_close = False
    sandbox: Sandbox


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # http.server writes headers and body as two segments; with Nagle on, the body can wait ~40 ms for
    # the client's delayed ACK on loopback. Real providers answer in one flight.
    disable_nagle_algorithm = True
    server: _Server

    # One dispatcher for every method: the provider router decides what is allowed.
    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.sandbox.verbose:
            super().log_message(format, *args)

    def finish(self) -> None:
        # After a reset fault the socket is already gone; flushing it would only raise.
        with contextlib.suppress(OSError, ValueError):
            super().finish()

    # --- request plumbing ----------------------------------------------------------------------

    def _read_body(self, limit: int) -> tuple[bytes, int]:
        """Read the whole body (Content-Length or chunked); keep at most ``limit`` bytes of it."""
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            kept, size = bytearray(), 0
            while True:
                line = self.rfile.readline(65537).strip()
                chunk_size = int(line.split(b";", 1)[0] or b"0", 16)
                if chunk_size == 0:
                    while self.rfile.readline(65537).strip():  # trailers
                        pass
                    return bytes(kept), size
                chunk = self.rfile.read(chunk_size)
                self.rfile.readline(3)
                size += len(chunk)
                if len(kept) < limit:
                    kept.extend(chunk[: limit - len(kept)])
        length = int(self.headers.get("Content-Length") or 0)
        if length <= limit:
            return self.rfile.read(length), length
        kept_bytes = self.rfile.read(limit)
        remaining = length - limit
        while remaining > 0:
            got = self.rfile.read(min(remaining, 1 << 20))
            if not got:
                break
            remaining -= len(got)
        return kept_bytes, length

    def _dispatch(self) -> None:
        received_at = time.time()  # as soon as the request line and headers are read, before the body
        sandbox = self.server.sandbox
        split = urlsplit(self.path)
        path = split.path
        try:
            body, size = self._read_body(RECORDED_BODY_LIMIT)
        except (ValueError, OSError):
            self.close_connection = True
            return
        request = Request(
            method=self.command,
            path=path,
            query=split.query,
            headers={k: v for k, v in self.headers.items()},
            body=body,
            body_size=size,
            received_at=received_at,
        )
        if path.startswith(CONTROL_PREFIX) or path == CONTROL_PREFIX.rstrip("/"):
            self._send(sandbox.control_api(request))
            return
        response = sandbox.serve(request, self)
        if response is not None:
            self._send(response)

    def _send(self, response: Response) -> None:
        provider = self.server.sandbox.provider
        self.send_response_only(response.status, HTTPStatus(response.status).phrase)
        names = {k.lower() for k, _ in response.headers}
        if "server" not in names:
            self.send_header("Server", provider.server_header)
        self.send_header("Date", formatdate(usegmt=True))
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    # --- faults that never answer ----------------------------------------------------------------

    def reset_connection(self) -> None:
        """Close with SO_LINGER 0: the kernel sends RST, the client sees a reset, not a response."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def hang(self, seconds: float) -> None:
        self.close_connection = True
        self.server.sandbox.wait_interruptibly(seconds)


class Sandbox:
    """One provider sandbox: a real HTTP server on ``host:port`` (port 0 picks a free one)."""

    def __init__(
        self,
        provider: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_url: str | None = None,
        webhook_retry_delays: list[float] | None = None,
        verbose: bool = False,
    ) -> None:
        self.name = provider
        self.verbose = verbose
        self.faults = FaultBook()
        self.limiter = TokenBucket()
        self.recorder = Recorder()
        self.stopping = threading.Event()
        self.webhooks = WebhookDispatcher(
            provider, self.stopping, url=webhook_url, retry_delays=webhook_retry_delays
        )
        self._server = _Server((host, port), _Handler)
        self._server.sandbox = self
        self.host, self.port = self._server.server_address[:2]
        self.provider: Provider = provider_class(provider)(self)
        self._thread: threading.Thread | None = None
        self._control: SandboxClient | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def control(self) -> SandboxClient:
        if self._control is None:
            from tidings_local.sandboxes.control import SandboxClient

            self._control = SandboxClient(self.base_url)
        return self._control

    def start(self) -> Sandbox:
        # A short poll interval makes stop() quick (shutdown waits for the serve loop to notice).
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.faults.released.set()
        if self._thread is not None:  # shutdown() would wait for ever on a loop that never ran
            self._server.shutdown()
            self._thread = None
        self._server.server_close()
        self.webhooks.stop()
        if self._control is not None:
            self._control.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- serving --------------------------------------------------------------------------------

    def wait_interruptibly(self, seconds: float) -> None:
        """Wait ``seconds`` unless faults are cleared or the sandbox stops first."""
        released = self.faults.released
        deadline = time.monotonic() + seconds
        while not (released.is_set() or self.stopping.is_set()):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            released.wait(min(left, 0.05))

    def pause(self, request: Request) -> None:
        """Serve the request's injected latency (called by the provider where its work happens)."""
        delay = request.latency + self.faults.take_latency(request.path)
        request.latency = 0.0
        if delay > 0:
            self.wait_interruptibly(delay)

    def serve(self, request: Request, handler: _Handler) -> Response | None:
        provider = self.provider
        record = self.recorder.add(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "headers": redact_headers(request.headers),
                "body": request.body.decode("utf-8", "replace"),
                "body_size": request.body_size,
                "form": None,
                "json": None,
                "timestamp": request.received_at,
                "status": None,
                "fault": None,
                "request_id": None,
            }
        )
        request.record = record
        with contextlib.suppress(Exception):  # a body the provider cannot parse is still recorded
            provider.parse(request)
        record["form"], record["json"] = request.form, request.json

        response = self._apply_faults(request, handler)
        if record["fault"] in ("reset", "hang"):
            return None  # the connection was reset, or held and closed without an answer
        decision = None
        if response is None:
            if request.body_size > provider.max_body_bytes:
                response = provider.too_large()
                handler.close_connection = True
            else:
                decision = self.limiter.acquire(at=request.received_at)
                if not decision.allowed:
                    response = provider.rate_limited(decision)
                else:
                    try:
                        response = provider.handle(request)
                    except Exception:
                        # A sandbox bug must look like a provider 500, not a dropped connection.
                        traceback.print_exc()
                        response = provider.error_response(500)
        provider.finalize(request, response, decision)
        record["status"] = response.status
        record["request_id"] = next(
            (v for k, v in response.headers if k.lower() in ("request-id", "twilio-request-id")), None
        )
        return response

    def _apply_faults(self, request: Request, handler: _Handler) -> Response | None:
        fault = self.faults.take(request.path, ("outage", "status", "reset", "hang"))
        if fault is None:
            return None
        request.record["fault"] = fault.kind
        if fault.kind == "outage":
            return self.provider.error_response(503)
        if fault.kind == "status":
            return self.provider.error_response(int(fault.status or 500), fault.retry_after)
        if fault.kind == "reset":
            handler.reset_connection()
            return None
        handler.hang(fault.delay if fault.delay is not None else DEFAULT_HANG_SECONDS)
        return None

    # --- control API ----------------------------------------------------------------------------

    def control_api(self, request: Request) -> Response:
        try:
            return self._control_route(request)
        except (FaultError, ValueError, TypeError, KeyError) as exc:
            return Response.json(400, {"error": str(exc)})

    def _control_route(self, request: Request) -> Response:
        route = request.path[len(CONTROL_PREFIX) :].strip("/")
        method = request.method
        payload = request.json_body() if request.body else {}
        if request.body and payload is None:
            raise ValueError("control requests take a JSON body")
        payload = payload or {}

        if route == "health" and method == "GET":
            return Response.json(200, {"provider": self.name, "base_url": self.base_url})
        if route == "requests":
            if method == "GET":
                prefix = (request.query_params.get("path_prefix") or [None])[0]
                return Response.json(200, self.recorder.list(prefix))
            if method == "DELETE":
                return Response.json(200, {"cleared": self.recorder.clear()})
        if route == "requests/counts" and method == "GET":
            prefix = (request.query_params.get("path_prefix") or [None])[0]
            return Response.json(200, self.recorder.counts(prefix))
        if route == "faults":
            if method == "GET":
                return Response.json(200, self.faults.list())
            if method == "POST":
                return Response.json(201, self.faults.add(Fault.from_spec(payload)).to_dict())
            if method == "DELETE":
                return Response.json(200, {"cleared": self.faults.clear()})
        if route == "rate_limit":
            if method == "PUT":
                self.limiter.configure(payload.get("per_second"), payload.get("burst"))
                return Response.json(200, self.limiter.describe())
            if method == "DELETE":
                self.limiter.configure(None)
                return Response.json(200, self.limiter.describe())
            if method == "GET":
                return Response.json(200, self.limiter.describe())
        if route == "webhook":
            if method == "PUT":
                self.webhooks.configure(payload)
            if method in ("PUT", "GET"):
                return Response.json(200, self.webhooks.describe())
        if route == "webhooks":
            if method == "GET":
                return Response.json(200, self.webhooks.snapshot())
            if method == "DELETE":
                return Response.json(200, {"cleared": self.webhooks.clear()})
        if route == "credentials" and method == "PUT":
            with self.provider.lock:
                self.provider.set_credentials(payload)
            return Response.json(200, {"updated": sorted(payload)})
        if route == "reset" and method == "POST":
            self.reset()
            return Response.json(200, {"reset": self.name})
        if route == "state" and method == "GET":
            return Response.json(200, self.provider.describe())
        if route.startswith(f"{self.name}/"):
            found = self.provider.control(request, route[len(self.name) + 1 :])
            if found is not None:
                return found
        return Response.json(404, {"error": f"no control endpoint {method} {request.path}"})

    def reset(self) -> None:
        """Back to a freshly started sandbox (same port): no objects, faults, limit, log or webhook."""
        self.faults.clear()
        self.limiter.configure(None)
        self.recorder.clear()
        self.webhooks.reset()
        with self.provider.lock:
            self.provider.reset()
