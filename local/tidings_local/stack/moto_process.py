"""moto in a process of its own, so the local system uses a second core.

One Python process holds one GIL: with moto (DynamoDB, SQS, the Step Functions interpreter's threads)
in the same process as the HTTP API, the pollers, the sandboxes and the Lambda pools, every DynamoDB call
a function makes waits for that one interpreter, and a bulk run spends most of each invocation waiting.
Here moto runs in a child interpreter with the same patches (patches.py: the dispatch and parse caches,
the shared interpreter clients, the atomic DynamoDB, the AppConfig routes), and moto's Lambda ``Invoke``
(the state machine's tasks, a boto3 ``invoke``) is relayed over HTTP back to this process, where the
Lambda pools are (``patches.invoke_locally``): tests and the CLI keep driving the pools directly.

The child ends when its stdin closes, so a crash leaves no moto server behind, and ignores Ctrl-C
(stack/child.py), so executions still running while the system stops fail their task cleanly rather
than with a vanished server.

    python -m tidings_local.stack.moto_process <host> <port> <invoke relay URL>
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from tidings_local.stack.child import ChildProcess

log = logging.getLogger(__name__)


# --- this process: the invoke relay ------------------------------------------------------------------


class _RelayServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class _RelayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # one kept-alive connection per interpreter thread, not one per task
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        from tidings_local.stack.patches import RELAYED_REQUEST_HEADERS, invoke_locally

        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        function_name = unquote(self.path.rsplit("/", 1)[-1])
        request_headers = {
            name: self.headers[name] for name in RELAYED_REQUEST_HEADERS if self.headers.get(name)
        }
        response_headers: dict[str, str] = {}
        payload = invoke_locally(function_name, body, request_headers, response_headers)
        self.send_response(200)
        for name, value in response_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class MotoProcess:
    """The child moto server and this process's invoke relay; ``start`` returns once moto listens."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._relay: _RelayServer | None = None
        self._child = ChildProcess("tidings_local.stack.moto_process", "the moto server process")

    def start(self) -> int:
        self._relay = _RelayServer((self.host, 0), _RelayHandler)
        threading.Thread(target=self._relay.serve_forever, name="moto-invoke-relay", daemon=True).start()
        relay_url = f"http://{self.host}:{self._relay.server_address[1]}/invoke"
        try:
            self.port = int(self._child.start(self.host, str(self.port), relay_url)["port"])
        except RuntimeError:
            self.stop()
            raise
        return self.port

    @property
    def pid(self) -> int | None:
        return self._child.pid

    def stop(self) -> None:
        self._child.stop()
        if self._relay is not None:
            self._relay.shutdown()
            self._relay.server_close()
            self._relay = None


# --- the child: moto, with the same patches, relaying Invoke -----------------------------------------


def freeze_survivors_of_full_collections() -> None:
    """Each full collection walks only what was allocated since the last one.

    moto's store only grows while the system runs (every item, message and execution it served), and a
    full collection (generation 2) walks all of it with every request to moto waiting: 0.2 s at the
    start of a 1,000-notification run, 0.95 s by its end, each stall a slot the providers' buckets
    cannot make up. Freezing what survived one (``gc.freeze``) leaves it out of the next. What is given
    up: a reference cycle among those survivors that later becomes garbage stays (reference counting
    frees everything else). Measured over a 1,000-item run, moto's peak PSS was the same with and without
    (906 and 898 MiB): what moto discards in cycles goes before it survives a full collection.
    """

    def after(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            gc.freeze()

    gc.callbacks.append(after)


def serve(host: str, port: int, relay_url: str) -> None:
    from tidings_local.stack.moto_http import start_moto
    from tidings_local.stack.patches import install_relayed_lambda

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us by closing stdin
    install_relayed_lambda(relay_url)
    server = start_moto(host, port)
    freeze_survivors_of_full_collections()
    bound = server.port
    # moto's Step Functions interpreter calls the other services at localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(bound)
    sys.stdout.write(json.dumps({"port": bound}) + "\n")
    sys.stdout.flush()
    sys.stdin.read()  # until the parent closes it, or dies
    with contextlib.suppress(Exception):
        server.stop()
    os._exit(0)  # the interpreter's execution threads must not hold the exit


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), sys.argv[3])
