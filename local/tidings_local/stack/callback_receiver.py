"""A shop's callback endpoint, locally: records each status event Tidings POSTs and checks its signature.

``make run`` starts it and points the stack's ``DefaultCallbackUrl`` at it, so every notification's
events arrive here; ``tidings local callbacks`` lists them (id, type, status, whether the signature
verified, how many times the same ``webhook-id`` came). Tests hand its ``callback_url`` to a request.

    POST /callbacks                 a callback (Standard Webhooks headers); 204, or the scripted failure
    POST /callbacks?fail=503&times=2   the first 2 deliveries of each webhook-id answered 503 (a test's
                                    flaky or broken shop; times omitted: every delivery)
    GET  /_receiver/callbacks       what arrived, oldest first (JSON)
    POST /_receiver/fail            {"count": 3, "status": 503}: answer the next callbacks with it
    POST /_receiver/reset           forget what arrived and any scripted failure

Each callback is verified on arrival with the signing secret the stack holds (read through
``secret``), using ``tidings.outbound.signing`` as a shop SDK would.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tidings.outbound import signing

CALLBACK_PATH = "/callbacks"


class CallbackReceiver:
    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, secret: Callable[[], str | None] | None = None
    ) -> None:
        self.secret = secret or (lambda: None)
        self.received: list[dict[str, Any]] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:  # quiet
                pass

            def _answer(self, status: int, payload: Any = None) -> None:
                body = b"" if payload is None else json.dumps(payload, indent=2).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/_receiver/callbacks":
                    self._answer(200, receiver.callbacks())
                else:
                    self._answer(404, {"error": "not found"})

            def do_POST(self) -> None:
                path = self.path.split("?")[0]
                body = self._body()
                if path == CALLBACK_PATH:
                    query = parse_qs(urlsplit(self.path).query)
                    self._answer(receiver.accept(dict(self.headers.items()), body, query))
                elif path == "/_receiver/fail":
                    plan = json.loads(body or b"{}")
                    receiver.fail_next(int(plan.get("count", 1)), int(plan.get("status", 503)))
                    self._answer(200, {"failing": int(plan.get("count", 1))})
                elif path == "/_receiver/reset":
                    receiver.reset()
                    self._answer(200, {"reset": True})
                else:
                    self._answer(404, {"error": "not found"})

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def callback_url(self) -> str:
        return self.base_url + CALLBACK_PATH

    def start(self) -> CallbackReceiver:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="callback-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- what arrives ----------------------------------------------------------------------------
    def accept(self, headers: dict[str, str], body: bytes, query: dict[str, list[str]] | None = None) -> int:
        lowered = {name.lower(): value for name, value in headers.items()}
        query = query or {}
        verified, reason = self._verify(headers, body)
        try:
            event = json.loads(body)
        except ValueError:
            event = {}
        with self._lock:
            webhook_id = lowered.get(signing.ID_HEADER)
            delivery = sum(1 for r in self.received if r["webhook_id"] == webhook_id) + 1
            status = self._failures.pop(0) if self._failures else 204
            if "fail" in query and delivery <= int((query.get("times") or ["1000000"])[0]):
                status = int(query["fail"][0])
            self.received.append(
                {
                    "webhook_id": webhook_id,
                    "timestamp": lowered.get(signing.TIMESTAMP_HEADER),
                    "type": event.get("type"),
                    "data": event.get("data"),
                    "verified": verified,
                    "rejection": reason,
                    "answered": status,
                    "received_at": time.time(),
                    "delivery": delivery,
                    # As received, for a check independent of this receiver (tests verify with the
                    # Standard Webhooks reference library).
                    "headers": {k: v for k, v in lowered.items() if k.startswith("webhook-")},
                    "body": body.decode("utf-8", "replace"),
                }
            )
        return status

    def _verify(self, headers: dict[str, str], body: bytes) -> tuple[bool, str | None]:
        secret = self.secret()
        if not secret:
            return False, "no_secret"
        try:
            signing.verify(body, headers, secret)
        except signing.SignatureInvalid as refused:
            return False, refused.reason
        except signing.SigningSecretInvalid:
            return False, "secret_invalid"
        return True, None

    def callbacks(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(record) for record in self.received]

    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._failures = [status] * count

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self._failures.clear()
