"""The local AWS: a moto server in a background thread, with the Step Functions interpreter on."""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from dataclasses import dataclass

from tidings_local.stack.patches import (
    install_atomic_dynamodb,
    install_local_appconfig,
    install_moto_speedups,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 4566  # LocalStack's port, so tools configured for it find this one too


@dataclass
class MotoServer:
    host: str = "127.0.0.1"
    port: int = 0  # 0: an ephemeral port (tests)

    def __post_init__(self) -> None:
        self._server = None
        self._previous_moto_port: str | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> MotoServer:
        from moto.server import ThreadedMotoServer

        install_moto_speedups()
        install_atomic_dynamodb()  # conditional writes atomic under concurrent callers, as on AWS
        install_local_appconfig()  # environments, deployments and the data plane moto lacks
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per AWS call is noise here
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        # moto's Step Functions interpreter calls the other services at localhost:$MOTO_PORT.
        self._previous_moto_port = os.environ.get("MOTO_PORT")
        os.environ["MOTO_PORT"] = str(self.port)
        # The server shares moto's in-process backends: start from an empty account.
        self._post("/moto-api/reset", None)
        self._post("/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})
        log.debug("moto server listening", extra={"url": self.url})
        return self

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
