"""A webhook relay between a provider sandbox and the local API's webhook route.

The sandbox posts its signed webhooks here (``control.set_webhook(relay.url)``); the relay answers 200
at once, as a load balancer in front of the receiver would, and forwards each body and its signature
headers unchanged to the real route, in one of these modes:

* ``late``: each delivery ``delay`` seconds later (after the saga has moved on);
* ``reorder``: deliveries are held for ``delay`` seconds, then forwarded newest first, each twice;
* ``storm``: every delivery forwarded ``copies`` times at once (a provider's redelivery storm).

What the receiver answered is kept (``answers``), so the run can tell a refused duplicate (a 2xx that
changed nothing) from a lost webhook (a 5xx).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

_FORWARDED = ("content-type", "stripe-signature", "x-twilio-signature", "user-agent")


class WebhookRelay:
    def __init__(self, target: str, mode: str, *, delay: float = 1.0, copies: int = 5) -> None:
        self.target = target
        self.mode = mode
        self.delay = delay
        self.copies = copies
        self.received = 0
        self.answers: Counter[int | str] = Counter()
        self._lock = threading.Lock()
        self._held: list[tuple[str, dict[str, str], bytes]] = []
        self._flush_timer: threading.Timer | None = None
        self._pending = 0
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="relay")
        self._http = httpx.Client(timeout=60, trust_env=False)
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() in _FORWARDED}
                # Twilio signs the URL it posted to: keep the path and query, change only the host.
                relay._accept(self.path, headers, body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name="webhook-relay", daemon=True).start()

    def _accept(self, path: str, headers: dict[str, str], body: bytes) -> None:
        with self._lock:
            self.received += 1
            if self.mode == "reorder":
                self._pending += 2
                self._held.append((path, headers, body))
                if self._flush_timer is None:
                    self._flush_timer = threading.Timer(self.delay, self._flush)
                    self._flush_timer.daemon = True
                    self._flush_timer.start()
                return
            copies = self.copies if self.mode == "storm" else 1
            self._pending += copies
        wait = self.delay if self.mode == "late" else 0.0
        for _ in range(copies):
            self._pool.submit(self._forward, path, headers, body, wait)

    def _flush(self) -> None:
        with self._lock:
            held, self._held = self._held, []
            self._flush_timer = None
        for path, headers, body in reversed(held):
            for _ in range(2):
                self._forward(path, headers, body, 0.0)

    def _forward(self, path: str, headers: dict[str, str], body: bytes, wait: float) -> None:
        if wait:
            time.sleep(wait)  # the fault itself (a late webhook), not a retry interval
        try:
            status: int | str = self._http.post(self.target + path, content=body, headers=headers).status_code
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        with self._lock:
            self.answers[status] += 1
            self._pending -= 1

    @property
    def idle(self) -> bool:
        with self._lock:
            return self._pending == 0 and not self._held

    def refused(self) -> int:
        """Forwarded webhooks the receiver did not take (not 2xx): each one is a lost event."""
        with self._lock:
            return sum(
                n for status, n in self.answers.items() if not (isinstance(status, int) and status < 300)
            )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()


def replay(
    deliveries: list[dict[str, Any]], *, copies: int, reverse: bool, concurrent: bool
) -> Counter[int | str]:
    """Post recorded webhook deliveries again, exactly as the sandbox signed them (same URL, headers,
    body): ``copies`` times each, newest first when ``reverse``, all at once when ``concurrent``.

    Replays stand in for a provider's duplicated, out-of-order or storming deliveries where a relay
    cannot sit between sandbox and receiver (Twilio signs the status-callback URL it posts to).
    """
    answers: Counter[int | str] = Counter()
    lock = threading.Lock()
    jobs = [d for d in deliveries if d.get("url") and d.get("delivered")]
    if reverse:
        jobs.reverse()
    client = httpx.Client(timeout=60, trust_env=False)

    def post(delivery: dict[str, Any]) -> None:
        headers = {k: v for k, v in (delivery.get("headers") or {}).items() if k.lower() in _FORWARDED}
        try:
            status: int | str = client.post(
                delivery["url"], content=delivery["body"].encode(), headers=headers
            ).status_code
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        with lock:
            answers[status] += 1

    try:
        if concurrent:
            with ThreadPoolExecutor(max_workers=16, thread_name_prefix="replay") as pool:
                list(pool.map(post, [d for d in jobs for _ in range(copies)]))
        else:
            for delivery in jobs:
                for _ in range(copies):
                    post(delivery)
    finally:
        client.close()
    return answers
