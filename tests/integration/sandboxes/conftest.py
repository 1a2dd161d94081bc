"""Sandboxes started once per module (each on its own free port) and reset before every test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tidings_local.sandboxes import Sandbox, credentials, start_sandbox

pytestmark = pytest.mark.integration

TWILIO_MESSAGES = f"/2010-04-01/Accounts/{credentials.TWILIO_ACCOUNT_SID}/Messages.json"


def _sandbox(name: str) -> Iterator[Sandbox]:
    with start_sandbox(name, webhook_retry_delays=[0.0, 0.0, 0.0]) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def stripe_module() -> Iterator[Sandbox]:
    yield from _sandbox("stripe")


@pytest.fixture(scope="module")
def sendgrid_module() -> Iterator[Sandbox]:
    yield from _sandbox("sendgrid")


@pytest.fixture(scope="module")
def twilio_module() -> Iterator[Sandbox]:
    yield from _sandbox("twilio")


@pytest.fixture
def stripe(stripe_module: Sandbox) -> Sandbox:
    stripe_module.control.reset()
    return stripe_module


@pytest.fixture
def sendgrid(sendgrid_module: Sandbox) -> Sandbox:
    sendgrid_module.control.reset()
    return sendgrid_module


@pytest.fixture
def twilio(twilio_module: Sandbox) -> Sandbox:
    twilio_module.control.reset()
    return twilio_module


def _client(base_url: str, **kwargs) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, trust_env=False, timeout=5.0, **kwargs) as client:
        yield client


@pytest.fixture
def stripe_http(stripe: Sandbox) -> Iterator[httpx.Client]:
    yield from _client(stripe.base_url, headers={"Authorization": f"Bearer {credentials.STRIPE_API_KEY}"})


@pytest.fixture
def sendgrid_http(sendgrid: Sandbox) -> Iterator[httpx.Client]:
    yield from _client(sendgrid.base_url, headers={"Authorization": f"Bearer {credentials.SENDGRID_API_KEY}"})


@pytest.fixture
def twilio_http(twilio: Sandbox) -> Iterator[httpx.Client]:
    yield from _client(
        twilio.base_url, auth=(credentials.TWILIO_API_KEY_SID, credentials.TWILIO_API_KEY_SECRET)
    )


class Receiver:
    """A real HTTP endpoint for webhooks: records each POST, answers the queued statuses then 200."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def sendgrid_mail(*recipients: str, **extra) -> dict:
    body = {
        "personalizations": [{"to": [{"email": r} for r in recipients or ("customer@example.com",)]}],
        "from": {"email": "receipts@shop.example", "name": "Shop"},
        "subject": "Your receipt",
        "content": [
            {"type": "text/plain", "value": "Thanks"},
            {"type": "text/html", "value": "<p>Thanks</p>"},
        ],
    }
    body.update(extra)
    return body
