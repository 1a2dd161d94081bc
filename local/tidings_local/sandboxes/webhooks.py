"""Outbound webhooks: signed exactly as each provider signs, delivered in order, retried on failure.

Each sandbox has one worker thread running jobs in submission order (a job may change an object's
state, e.g. a Twilio message becoming ``sent``, and then deliver its webhook). A failed delivery
(connection error or non-2xx) is retried after each delay of ``retry_delays`` (seconds; providers wait
minutes to hours, locally the default is a fraction of a second), re-signed on every attempt.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

DEFAULT_RETRY_DELAYS = (0.05, 0.1, 0.2)
DELIVERY_TIMEOUT_SECONDS = 5.0


# --- signatures, as the providers compute them ---------------------------------------------------


def stripe_signature_header(secret: str, payload: bytes, timestamp: int) -> str:
    """``Stripe-Signature``: ``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def sendgrid_signature(private_key_pem: str, payload: bytes, timestamp: int) -> str:
    """``X-Twilio-Email-Event-Webhook-Signature``: base64 DER ECDSA P-256/SHA-256 of timestamp+body."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError("the SendGrid webhook key must be an EC (P-256) private key")
    signature = key.sign(str(timestamp).encode() + payload, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str | Iterable[str]]) -> str:
    """``X-Twilio-Signature``: base64 HMAC-SHA1(auth token, URL + each sorted name followed by value)."""
    data = url
    for name in sorted(params):
        value = params[name]
        values = [value] if isinstance(value, str) else sorted(value)
        data += "".join(name + v for v in values)
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


# --- delivery --------------------------------------------------------------------------------------


class WebhookDispatcher:
    """One sandbox's outbound webhooks; ``stopping`` is its sandbox's stop signal."""

    def __init__(
        self,
        provider: str,
        stopping: threading.Event,
        *,
        url: str | None = None,
        retry_delays: Iterable[float] | None = None,
    ) -> None:
        self._provider = provider
        self._stopping = stopping
        self.url = url
        self.retry_delays = tuple(float(d) for d in (retry_delays or DEFAULT_RETRY_DELAYS))
        #: Paused: every delivery is recorded and never attempted (an endpoint the provider cannot
        #: reach), so a test can leave an event undelivered on purpose.
        self.paused = False
        self._initial = (self.url, self.retry_delays)
        self._lock = threading.Lock()
        self._deliveries: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._jobs: queue.Queue[tuple[int, Callable[[], None]] | None] = queue.Queue()
        self._pending = 0
        #: Bumped by reset(); jobs and deliveries of an older generation stop.
        self._generation = 0
        self._job_generation = 0
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None

    def configure(self, payload: dict[str, Any]) -> None:
        if "url" in payload:
            self.url = payload["url"] or None
        if payload.get("retry_delays") is not None:
            delays = tuple(float(d) for d in payload["retry_delays"])
            if any(d < 0 for d in delays):
                raise ValueError("retry_delays must be >= 0")
            self.retry_delays = delays
        if "paused" in payload:
            self.paused = bool(payload["paused"])

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "retry_delays": list(self.retry_delays), "paused": self.paused}

    # --- jobs -----------------------------------------------------------------------------------

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the worker thread, after every job submitted before it."""
        with self._lock:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"webhooks-{self._provider}", daemon=True
                )
                self._thread.start()
            self._jobs.put((self._generation, job))

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            generation, job = item
            try:
                # A job submitted before a reset belongs to a world the test has already forgotten.
                if not self._stopping.is_set() and generation == self._generation:
                    self._job_generation = generation
                    job()
            except Exception as exc:  # a broken job must not stop later deliveries
                with self._lock:
                    self._deliveries.append({"id": next(self._ids), "error": f"job failed: {exc!r}"})
            finally:
                with self._lock:
                    self._pending -= 1

    def stop(self) -> None:
        self._jobs.put(None)
        if self._client is not None:
            self._client.close()

    # --- one delivery with retries ----------------------------------------------------------------

    def deliver(
        self,
        *,
        url: str | None,
        body: bytes,
        content_type: str,
        sign: Callable[[], dict[str, str]],
        event: str,
        retries: int | None = None,
    ) -> dict[str, Any] | None:
        """POST ``body`` to ``url`` (the configured URL when None), retrying as configured.

        Called from a job. ``sign`` returns the signature headers for one attempt. ``retries`` caps the
        number of retries (Twilio retries far less than Stripe or SendGrid).
        """
        target = url or self.url
        if not target:
            return None
        generation = self._job_generation
        delays = self.retry_delays if retries is None else self.retry_delays[:retries]
        record: dict[str, Any] = {
            "id": next(self._ids),
            "provider": self._provider,
            "event": event,
            "url": target,
            "headers": {},
            "body": body.decode("utf-8", "replace"),
            "attempts": [],
            "delivered": False,
        }
        with self._lock:
            if generation != self._generation:
                return None
            self._deliveries.append(record)
        if self.paused:
            return record
        for attempt, delay in enumerate((0.0, *delays)):
            if attempt and delay:
                self._stopping.wait(delay)
            if self._stopping.is_set() or generation != self._generation:
                break
            headers = {"Content-Type": content_type, "User-Agent": _user_agent(self._provider)}
            headers.update(sign())
            record["headers"] = headers
            outcome: dict[str, Any] = {"at": time.time(), "status": None, "error": None}
            try:
                response = self._http().post(target, content=body, headers=headers)
                outcome["status"] = response.status_code
            except httpx.HTTPError as exc:
                outcome["error"] = type(exc).__name__
            record["attempts"].append(outcome)
            if outcome["status"] is not None and 200 <= outcome["status"] < 300:
                record["delivered"] = True
                break
        return record

    def _http(self) -> httpx.Client:
        if self._client is None:
            # trust_env=False: local deliveries must never go through a proxy from the environment.
            self._client = httpx.Client(timeout=DELIVERY_TIMEOUT_SECONDS, trust_env=False)
        return self._client

    # --- inspection -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "pending": self._pending,
                "deliveries": [{**d, "attempts": list(d.get("attempts", []))} for d in self._deliveries],
            }

    def clear(self) -> int:
        with self._lock:
            cleared = len(self._deliveries)
            self._deliveries = []
        return cleared

    def reset(self) -> None:
        """Drop queued jobs and deliveries; an in-progress delivery stops before its next retry."""
        with self._lock:
            self._generation += 1
        with contextlib.suppress(queue.Empty):
            while True:
                item = self._jobs.get_nowait()
                if item is None:
                    self._jobs.put(None)
                    break
                with self._lock:
                    self._pending -= 1
        self.clear()
        self.url, self.retry_delays = self._initial
        self.paused = False


def _user_agent(provider: str) -> str:
    return {
        "stripe": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "sendgrid": "SendGrid Event API",
        "twilio": "TwilioProxy/1.1",
    }.get(provider, "sandbox")
