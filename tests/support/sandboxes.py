"""Helpers shared by the sandbox tests."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tidings_local.sandboxes import credentials

TWILIO_MESSAGES = f"/2010-04-01/Accounts/{credentials.TWILIO_ACCOUNT_SID}/Messages.json"


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
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def clear(self) -> None:
        with self._lock:
            self.received.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


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
