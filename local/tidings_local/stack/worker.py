"""One local Lambda "container": a long-lived process that imports a handler once and runs invocations.

Started by ``lambdas.FunctionPool`` as ``python -m tidings_local.stack.worker <code_dir> <handler>`` with
exactly the function's environment. Requests arrive as JSON lines on stdin; each answer is one JSON line
on a private copy of the original stdout, while the process's own stdout is pointed at stderr, so that
whatever the handler prints reaches the logs (as on Lambda) and never corrupts the protocol.

Imports here are the standard library only: this is the cold start every function pays.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The context object the Python runtime passes to a handler."""

    def __init__(self, request: dict[str, Any]) -> None:
        ctx = request["context"]
        self.function_name: str = ctx["function_name"]
        self.function_version: str = ctx.get("function_version", "$LATEST")
        self.invoked_function_arn: str = ctx["invoked_function_arn"]
        self.memory_limit_in_mb: int = int(ctx["memory_limit_in_mb"])
        self.aws_request_id: str = ctx["aws_request_id"]
        self.log_group_name: str = ctx["log_group_name"]
        self.log_stream_name: str = ctx["log_stream_name"]
        self.identity = None
        self.client_context = ctx.get("client_context")
        self._deadline_ms: int = int(ctx["deadline_ms"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(error_type: str, message: str, trace: list[str] | None = None) -> dict[str, Any]:
    return {"ok": False, "errorType": error_type, "errorMessage": message, "stackTrace": trace or []}


def _load_handler(handler: str) -> tuple[Any, dict[str, Any] | None]:
    module_name, _, function_name = handler.rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except Exception as exc:
        # The runtime reports import failures on every invoke, under this exact type.
        return None, _error("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
    function = getattr(module, function_name, None)
    if function is None:
        message = f"Handler '{function_name}' missing on module '{module_name}'"
        return None, _error("Runtime.HandlerNotFound", message)
    return function, None


def main(argv: list[str]) -> int:
    code_dir, handler = argv[1], argv[2]
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the handler's prints go to the log stream
    sys.stdout = sys.stderr
    os.chdir(code_dir)
    sys.path.insert(0, code_dir)

    init_started = time.perf_counter()
    function, init_error = _load_handler(handler)
    init_ms: float | None = (time.perf_counter() - init_started) * 1000
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(request)
        os.environ["_X_AMZN_REQUEST_ID"] = context.aws_request_id
        # The same START / END / REPORT lines Lambda writes around each invocation.
        print(
            f"START RequestId: {context.aws_request_id} Version: {context.function_version}", file=sys.stderr
        )
        started = time.perf_counter()
        if init_error is not None:
            reply = init_error
        else:
            try:
                result = function(request["event"], context)
            except Exception as exc:
                reply = _exception_reply(exc)
            else:
                try:
                    reply = {"ok": True, "result": json.dumps(result)}
                except (TypeError, ValueError) as exc:
                    reply = _error("Runtime.MarshalError", f"Unable to marshal response: {exc}")
        _report(context, (time.perf_counter() - started) * 1000, init_ms)
        init_ms = None  # only the first invocation of a container reports its init
        sys.stderr.flush()
        protocol.write(json.dumps(reply) + "\n")
    return 0


def _report(context: LambdaContext, duration_ms: float, init_ms: float | None) -> None:
    import math
    import resource

    used_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # Linux reports KiB
    report = (
        f"REPORT RequestId: {context.aws_request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {math.ceil(duration_ms)} ms\tMemory Size: {context.memory_limit_in_mb} MB\t"
        f"Max Memory Used: {used_mb} MB"
    )
    if init_ms is not None:
        report += f"\tInit Duration: {init_ms:.2f} ms"
    print(f"END RequestId: {context.aws_request_id}", file=sys.stderr)
    print(report, file=sys.stderr)


def _exception_reply(exc: BaseException) -> dict[str, Any]:
    # Like the Python runtime: errorType is the class name (the state machine's Retry/Catch contract).
    print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr)
    trace = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])  # without this file's frame
    return _error(type(exc).__name__, str(exc), [t.rstrip() for t in trace])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
