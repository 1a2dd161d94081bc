"""SandboxClient: drive a sandbox through its HTTP control API (/_sandbox/...), in or out of process."""

from __future__ import annotations

import time
from typing import Any

import httpx


class SandboxControlError(RuntimeError):
    """The control API refused a request (bad fault spec, unknown object...)."""


class SandboxClient:
    """The control object of one sandbox, whether it runs in this process or elsewhere.

    ``SandboxClient("http://127.0.0.1:12111")`` drives a sandbox started by ``tidings sandbox serve``;
    ``start_sandbox(...).control`` is the same object for an in-process sandbox.
    """

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        # trust_env=False: a proxy configured in the environment must never see local control traffic.
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, f"/_sandbox/{path}", json=json, params=params)
        if response.status_code >= 400:
            raise SandboxControlError(f"{method} /_sandbox/{path} -> {response.status_code}: {response.text}")
        return response.json() if response.content else None

    # --- common ---------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._call("GET", "health")

    def requests(self, path_prefix: str | None = None) -> list[dict[str, Any]]:
        """Every provider request received (oldest first), optionally only paths under ``path_prefix``."""
        return self._call("GET", "requests", params={"path_prefix": path_prefix} if path_prefix else None)

    def request_counts(self, path_prefix: str | None = None) -> dict[str, int]:
        """How many provider requests got each status (``{"200": 12, "429": 1}``), a cheap poll for a
        long run: the records themselves stay in the sandbox."""
        params = {"path_prefix": path_prefix} if path_prefix else None
        return self._call("GET", "requests/counts", params=params)

    def clear_requests(self) -> None:
        self._call("DELETE", "requests")

    def inject_fault(
        self,
        kind: str,
        count: int | None = None,
        path_prefix: str | None = None,
        status: int | None = None,
        retry_after: int | None = None,
        delay: float | None = None,
    ) -> dict[str, Any]:
        """Inject one fault: ``latency`` (delay s), ``status`` (status, retry_after), ``reset``, ``hang``
        (delay s, default 300), ``outage`` (503 until cleared). ``count`` None = until cleared."""
        spec = {
            "kind": kind,
            "count": count,
            "path_prefix": path_prefix,
            "status": status,
            "retry_after": retry_after,
            "delay": delay,
        }
        return self._call("POST", "faults", json={k: v for k, v in spec.items() if v is not None})

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "faults")

    def clear_faults(self) -> None:
        """Remove every fault; requests held by latency or hang faults are released at once."""
        self._call("DELETE", "faults")

    def set_rate_limit(self, per_second: float | None, burst: int | None = None) -> dict[str, Any]:
        """Token bucket: ``burst`` requests at once, refilled at ``per_second``. None turns it off."""
        if per_second is None:
            return self._call("DELETE", "rate_limit")
        return self._call("PUT", "rate_limit", json={"per_second": per_second, "burst": burst})

    def reset(self) -> None:
        """Forget objects, requests, faults, the rate limit and webhook deliveries; restore credentials."""
        self._call("POST", "reset")

    def set_credentials(self, **values: Any) -> None:
        """Change what the sandbox accepts, e.g. to simulate a rotated key.

        Stripe: ``api_key`` (str or list), ``webhook_secret``. SendGrid: ``api_key`` (str or list).
        Twilio: ``auth_token``, ``api_key_sid``, ``api_key_secret``.
        """
        self._call("PUT", "credentials", json=values)

    def state(self) -> dict[str, Any]:
        """The provider objects the sandbox holds (payment intents, messages, mails...)."""
        return self._call("GET", "state")

    # --- webhooks -------------------------------------------------------------------------------

    def set_webhook(self, url: str | None, retry_delays: list[float] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"url": url}
        if retry_delays is not None:
            payload["retry_delays"] = retry_delays
        return self._call("PUT", "webhook", json=payload)

    def pause_webhooks(self, paused: bool = True) -> dict[str, Any]:
        """Record every webhook and never attempt it (as for an endpoint the provider cannot reach)."""
        return self._call("PUT", "webhook", json={"paused": paused})

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        return self._call("GET", "webhooks")["deliveries"]

    def clear_webhook_deliveries(self) -> None:
        self._call("DELETE", "webhooks")

    def wait_for_webhooks(self, count: int | None = None, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until no webhook job is pending (and at least ``count`` deliveries exist).

        Polls the control API; raises TimeoutError with what was seen if ``timeout`` passes first.
        """
        deadline = time.monotonic() + timeout
        while True:
            snapshot = self._call("GET", "webhooks")
            deliveries = snapshot["deliveries"]
            if snapshot["pending"] == 0 and (count is None or len(deliveries) >= count):
                return deliveries
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(deliveries)} webhook deliveries, {snapshot['pending']} pending")
            time.sleep(0.02)

    # --- provider-specific ------------------------------------------------------------------------

    def complete_action(self, payment_intent_id: str, outcome: str = "succeeded") -> dict[str, Any]:
        """Stripe: the customer completes (``succeeded``) or fails (``failed``) the 3-D Secure challenge."""
        return self._call(
            "POST", f"stripe/payment_intents/{payment_intent_id}/complete_action", json={"outcome": outcome}
        )

    def add_bounce(self, email: str, event: str = "bounce", reason: str | None = None) -> None:
        """SendGrid: mail to ``email`` ends in ``event`` (bounce, dropped, deferred, spamreport)
        instead of ``delivered``."""
        self._call("POST", "sendgrid/bounces", json={"email": email, "event": event, "reason": reason})

    def put_template(self, template_id: str, published: dict[str, Any]) -> dict[str, Any]:
        """SendGrid: store a dynamic template (``{"name", "versions": [...]}``) under ``template_id``, as
        one created in the account before the stack was deployed (tidings.templates.handlebars)."""
        return self._call("PUT", f"sendgrid/templates/{template_id}", json=published)

    def inbound_sms(self, sender: str, body: str = "STOP", url: str | None = None) -> dict[str, Any]:
        """Twilio: ``sender`` texts ``body`` to the account's number; the incoming-message webhook goes to
        ``url`` (else the configured one). STOP (and Twilio's other opt-out keywords) opts the number out:
        later sends to it are refused with 21610; START opts it back in."""
        return self._call("POST", "twilio/inbound", json={"from": sender, "body": body, "url": url})

    def set_undeliverable(self, to: str, error_code: int = 30003, status: str = "undelivered") -> None:
        """Twilio: messages to ``to`` end ``undelivered`` (or ``failed``) with ``error_code``."""
        self._call(
            "POST", "twilio/undeliverable", json={"to": to, "error_code": error_code, "status": status}
        )
