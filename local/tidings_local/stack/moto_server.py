"""The local AWS: a moto server with the Step Functions interpreter on, in a background thread of this
process, or in a process of its own (``own_process``: moto_process.py) so that it has a core to itself."""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_PORT = 4566  # LocalStack's port, so tools configured for it find this one too


@dataclass
class MotoServer:
    host: str = "127.0.0.1"
    port: int = 0  # 0: an ephemeral port (tests)
    own_process: bool = False

    def __post_init__(self) -> None:
        self._server: Any = None
        self._previous_moto_port: str | None = None

    @property
    def pid(self) -> int:
        """The process serving moto (this one, unless it has its own)."""
        from tidings_local.stack.moto_process import MotoProcess

        if isinstance(self._server, MotoProcess) and self._server.pid is not None:
            return self._server.pid
        return os.getpid()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> MotoServer:
        if self.own_process:
            from tidings_local.stack.moto_process import MotoProcess

            # The child installs the same patches; the interpreter there finds moto through its own
            # MOTO_PORT, so this process's environment stays as it is.
            self._server = MotoProcess(self.host, self.port)
            self.port = self._server.start()
        else:
            self._start_in_process()
        # The server shares moto's in-process backends: start from an empty account.
        self._post("/moto-api/reset", None)
        self._post("/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})
        log.debug("moto server listening", extra={"url": self.url})
        return self

    def _start_in_process(self) -> None:
        from tidings_local.stack.moto_http import start_moto

        self._server = start_moto(self.host, self.port)
        self.port = self._server.port
        # moto's Step Functions interpreter calls the other services at localhost:$MOTO_PORT.
        self._previous_moto_port = os.environ.get("MOTO_PORT")
        os.environ["MOTO_PORT"] = str(self.port)

    def _post(self, path: str, body: dict | None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        request = urllib.request.Request(self.url + path, data=data, method="POST")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
            if os.environ.get("MOTO_PORT") == str(self.port):
                if self._previous_moto_port is None:
                    os.environ.pop("MOTO_PORT", None)
                else:
                    os.environ["MOTO_PORT"] = self._previous_moto_port
