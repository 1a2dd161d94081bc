"""The local AWS: a moto server in a background thread, with the Step Functions interpreter on."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

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


# --- moto's per-request overheads, removed without changing what any request does -------------------

#: Services whose SigV4 signing name alone decides moto's backend (no path or body sniffing involved).
#: Not "ses": SES v1 and SES v2 both sign as "ses" and moto tells them apart by path.
_DISPATCH_BY_SIGNING_NAME = frozenset(
    {
        "dynamodb",
        "sqs",
        "states",
        "lambda",
        "sns",
        "secretsmanager",
        "logs",
        "monitoring",
        "iam",
        "sts",
        "ssm",
        "kms",
        "events",
        "cloudformation",
    }
)
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")
_speedups_lock = threading.Lock()


def install_moto_speedups() -> None:
    """Two process-wide patches to moto's server, each a cache of a pure computation.

    * Dispatch: moto picks the backend of every request under one global lock, listing its own package
      directory and trying hundreds of URL patterns before it reads the signing name from the
      Authorization header. For a signed request to one of the services above, the same signing name,
      API target prefix and first path segment always lead to the same backend: the first answer is
      remembered.
    * Step Functions clients: the interpreter builds a new boto3 client (endpoint, SSL context, service
      model) for every Lambda, SQS or DynamoDB task it runs; boto3 clients are thread-safe, so one per
      region and service is kept.
    * Step Functions: moto's interpreter parses the state machine's definition with ANTLR for every
      execution (a 1,000-item bulk parses it 1,000 times). The parsed program is immutable (each
      execution's state lives in its own Environment; Map iterations already share one program), so
      it is parsed once per definition.
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    with _speedups_lock:
        if not getattr(DomainDispatcherApplication.get_application, "_tidings_local", False):
            DomainDispatcherApplication.get_application = _cached_dispatch(  # type: ignore[method-assign]
                DomainDispatcherApplication.get_application
            )
        if not getattr(AmazonStateLanguageParser.parse, "_tidings_local", False):
            cached_parse = lru_cache(maxsize=32)(AmazonStateLanguageParser.parse)
            cached_parse._tidings_local = True  # type: ignore[attr-defined]
            AmazonStateLanguageParser.parse = staticmethod(cached_parse)  # type: ignore[method-assign]
        _share_interpreter_clients()


def _share_interpreter_clients() -> None:
    import importlib
    import sys

    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    if getattr(original, "_tidings_local", False):
        return
    clients: dict[tuple[str, str, str], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto builds every client with the same fixed keys whatever the state's credentials say.
        key = (region, service, os.environ.get("MOTO_PORT", ""))
        with lock:
            if key not in clients:
                clients[key] = original(region, service)
            return clients[key]

    boto_client_for._tidings_local = True  # type: ignore[attr-defined]
    # The task modules import the function by name, so each module's own reference is replaced.
    for name in (
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
    ):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    boto_client.boto_client_for = boto_client_for
    for module_name, module in list(sys.modules.items()):
        uses_original = getattr(module, "boto_client_for", None) is original
        if module_name.startswith("moto.stepfunctions.") and uses_original:
            module.boto_client_for = boto_client_for


def _cached_dispatch(original: Any) -> Any:
    def get_application(self: Any, environ: dict[str, Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        match = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if (
            match is None
            or match.group(2) not in _DISPATCH_BY_SIGNING_NAME
            or path.startswith(("/moto-api", "/latest/"))
        ):
            return original(self, environ)
        # One signing name can serve two backends (ses: SES v1 at "/", SES v2 under "/v2/"; dynamodb:
        # tables and streams, told apart by X-Amz-Target), so those take part in the key too.
        target = environ.get("HTTP_X_AMZ_TARGET", "").split(".", 1)[0]
        key = (match.group(2), target, path.split("/", 2)[1] if path.count("/") > 1 else "")
        apps = self.__dict__.setdefault("_tidings_apps_by_signing_name", {})
        app = apps.get(key)
        if app is None:
            app = apps[key] = original(self, environ)
        return app

    get_application._tidings_local = True  # type: ignore[attr-defined]
    return get_application
