"""A forwarding HTTP proxy that can play an AWS-side fault, or kill the caller once the upstream answered.

A function is pointed at it through configuration only (``AWS_ENDPOINT_URL_DYNAMODB``,
``AWS_ENDPOINT_URL_SESV2``, ``AWS_ENDPOINT_URL_SNS``, or a provider's ``*_API_BASE_URL``): its clients talk
to it over real HTTP exactly as they would to AWS or the provider, and nothing in ``functions/`` or
``layers/`` knows it is there.

Faults are consumed in the order added, ``count`` times each (for ever when ``count`` is None), by
requests whose path or ``X-Amz-Target`` contains ``match`` (all requests when unset):

* ``status``: a 5xx answer in the service's own error shape (``ServiceUnavailable``);
* ``throttle``: the service's throttling error (DynamoDB ``ProvisionedThroughputExceededException``,
  SES ``TooManyRequestsException``, SNS ``Throttling``);
* ``hang``: the request is read and nothing comes back until ``delay`` passes (or faults are cleared);
* ``reset``: the connection is closed with a TCP RST;
* ``outage``: a 503 on every request until cleared.

``crash_after(predicate, action)`` arms a crash point: the request is forwarded and applied upstream,
then ``action()`` runs (it kills the calling worker) and no answer is sent back.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

_ids = itertools.count(1)

#: What a crash point sees of a forwarded request: method, path, headers, body, upstream status.
CrashPredicate = Callable[[str, str, dict[str, str], bytes, int], bool]


@dataclass
class ProxyFault:
    kind: str  # status | throttle | hang | reset | outage
    count: int | None = None
    match: str | None = None
    delay: float = 30.0
    id: int = field(default_factory=lambda: next(_ids))
    fired: int = 0

    def matches(self, path: str, target: str) -> bool:
        return self.match is None or self.match in path or self.match in target

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.fired >= self.count


@dataclass
class CrashPoint:
    predicate: CrashPredicate
    action: Callable[[], None]
    count: int = 1
    fired: int = 0


class FaultProxy:
    """One pass-through proxy to ``upstream`` (moto, or a provider sandbox) on 127.0.0.1."""

    def __init__(self, upstream: str, name: str = "proxy") -> None:
        self.upstream = upstream.rstrip("/")
        self.name = name
        self._lock = threading.Lock()
        self._faults: list[ProxyFault] = []
        self._crashes: list[CrashPoint] = []
        self.released = threading.Event()
        self.requests = 0
        self.faulted = 0
        self.crashed = 0
        self._http = httpx.Client(timeout=60, trust_env=False)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                proxy._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward  # noqa: N815 (http.server names)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name=f"proxy-{name}", daemon=True).start()

    # --- control --------------------------------------------------------------------------------

    def add(self, kind: str, count: int | None = None, match: str | None = None, delay: float = 30.0) -> None:
        with self._lock:
            if not self._faults:
                self.released = threading.Event()
            self._faults.append(ProxyFault(kind, count, match, delay))

    def crash_after(
        self, predicate: CrashPredicate, action: Callable[[], None], count: int = 1
    ) -> CrashPoint:
        point = CrashPoint(predicate, action, count)
        with self._lock:
            self._crashes.append(point)
        return point

    def clear(self) -> None:
        with self._lock:
            self._faults = []
            self._crashes = []
            self.released.set()

    def close(self) -> None:
        self.clear()
        self.server.shutdown()
        self.server.server_close()
        self._http.close()

    def _take(self, path: str, target: str) -> ProxyFault | None:
        with self._lock:
            for fault in self._faults:
                if not fault.exhausted and fault.matches(path, target):
                    fault.fired += 1
                    return fault
        return None

    def _crash_point(self, method: str, path: str, headers: dict[str, str], body: bytes, status: int) -> Any:
        with self._lock:
            for point in self._crashes:
                if point.fired < point.count and point.predicate(method, path, headers, body, status):
                    point.fired += 1
                    return point
        return None

    # --- serving --------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "content-length")}
        target = handler.headers.get("X-Amz-Target") or ""
        with self._lock:
            self.requests += 1
        fault = self._take(handler.path, target)
        if fault is not None:
            with self._lock:
                self.faulted += 1
            if fault.kind == "reset":
                _reset(handler)
                return
            if fault.kind == "hang":
                self.released.wait(fault.delay)
                handler.close_connection = True
                return
            _send(handler, *_error(fault.kind, handler.headers))
            return
        try:
            answer = self._http.request(
                handler.command, self.upstream + handler.path, headers=headers, content=body
            )
        except httpx.HTTPError:
            _reset(handler)
            return
        point = self._crash_point(
            handler.command, handler.path, dict(handler.headers), body, answer.status_code
        )
        if point is not None:
            with self._lock:
                self.crashed += 1
            point.action()  # the caller dies with the upstream's answer unread
            _reset(handler)
            return
        skip = ("content-length", "transfer-encoding", "connection", "content-encoding")
        _send(
            handler,
            answer.status_code,
            [(k, v) for k, v in answer.headers.items() if k.lower() not in skip],
            answer.content,
        )


def _send(handler: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    with contextlib.suppress(OSError):
        handler.send_response(status)
        for key, value in headers:
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def _reset(handler: BaseHTTPRequestHandler) -> None:
    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()


def _error(kind: str, headers: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """The service's own error answer: JSON 1.0 (DynamoDB), query XML (SNS), or REST JSON (SES v2)."""
    content_type = headers.get("Content-Type") or ""
    throttled = kind == "throttle"
    if "x-amz-json" in content_type:  # DynamoDB
        code = "ProvisionedThroughputExceededException" if throttled else "InternalServerError"
        status = 400 if throttled else 500
        body = json.dumps(
            {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected by the chaos run"}
        ).encode()
        return status, [("Content-Type", "application/x-amz-json-1.0")], body
    if "x-www-form-urlencoded" in content_type:  # SNS (query protocol)
        code, status = ("Throttling", 400) if throttled else ("ServiceUnavailable", 503)
        error_type = "Sender" if throttled else "Receiver"
        xml = (
            f"<ErrorResponse><Error><Type>{error_type}</Type><Code>{code}</Code>"
            "<Message>injected by the chaos run</Message></Error><RequestId>chaos</RequestId></ErrorResponse>"
        )
        return status, [("Content-Type", "text/xml")], xml.encode()
    code, status = ("TooManyRequestsException", 429) if throttled else ("ServiceUnavailable", 503)
    body = json.dumps({"message": "injected by the chaos run"}).encode()
    return status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)], body
