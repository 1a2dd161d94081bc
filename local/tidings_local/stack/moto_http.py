"""moto's HTTP server, with the connections kept alive.

moto serves with werkzeug's development server, which closes every connection after one response: its
request handler cannot tell a body the application left unread from the next request, so it drains the
socket and hangs up. Every AWS call a function makes then opens a TCP connection and moto starts a thread
for it; in a bulk run that was a fifth of the moto process's time, and each function's boto3 client
reconnected for every call.

Here each request's body is read whole (AWS SDK requests carry a Content-Length) before moto sees it, so
nothing is left on the socket and the connection stays open for the next request, and each answer goes
out in one write with its length. A chunked request, or one that asks to close, is served as werkzeug
serves it. One thread per connection, as before: a call waiting on a Lambda invocation or an SQS long
poll holds its thread, and a fixed pool could run out while the functions it waits for need moto.
"""

from __future__ import annotations

import io
import logging
import threading
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

log = logging.getLogger(__name__)

_NO_BODY_STATUSES = frozenset({204, 304})


class KeepAliveRequestHandler(MotoRequestHandler):
    protocol_version = "HTTP/1.1"

    def run_wsgi(self) -> None:
        length = self.headers.get("Content-Length")
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower() or (
            length is None and self.command not in ("GET", "HEAD", "DELETE", "OPTIONS")
        ):
            super().run_wsgi()  # werkzeug's way: dechunk, answer, close
            return
        body = self.rfile.read(int(length or 0))
        environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        started: list[Any] = []
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [status, headers]
            return chunks.append

        try:
            answer = self.server.app(environ, start_response)
            try:
                chunks.extend(answer)
            finally:
                if hasattr(answer, "close"):
                    answer.close()
        except Exception:
            log.exception("moto failed on %s %s", self.command, self.path.split("?", 1)[0])
            started[:] = ["500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")]]
            chunks[:] = [b"Internal Server Error"]
            self.close_connection = True
        self._answer(started[0], started[1], b"".join(chunks))

    def _answer(self, status: str, headers: list[tuple[str, str]], payload: bytes) -> None:
        code = int(status.split(None, 1)[0])
        head = [f"{self.protocol_version} {status}\r\n"]
        names = set()
        for name, value in headers:
            names.add(name.lower())
            head.append(f"{name}: {value}\r\n")
        if "content-length" not in names and code not in _NO_BODY_STATUSES and code >= 200:
            head.append(f"Content-Length: {len(payload)}\r\n")
        if self.close_connection:
            head.append("Connection: close\r\n")
        head.append("\r\n")
        if self.command == "HEAD" or code in _NO_BODY_STATUSES:
            payload = b""
        self.wfile.write("".join(head).encode("latin-1") + payload)


class MotoHTTPServer:
    """moto's backends behind the keep-alive server, in a thread of this process."""

    def __init__(self, host: str, port: int) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=KeepAliveRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MotoHTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def start_moto(host: str, port: int) -> MotoHTTPServer:
    """moto with the local system's patches (patches.py), serving on ``host``:``port`` (0: any)."""
    from tidings_local.stack.patches import (
        install_atomic_backends,
        install_local_appconfig,
        install_moto_speedups,
    )

    install_moto_speedups()
    install_atomic_backends()  # conditional writes and receives atomic under concurrent callers, as on AWS
    install_local_appconfig()  # environments, deployments and the data plane moto lacks
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per AWS call is noise here
    return MotoHTTPServer(host, port).start()
