"""Crash points: kill a function's container at a step boundary, through configuration only.

A :class:`~tidings_local.chaos.proxy.FaultProxy` is put in front of what the function talks to (a
provider sandbox through its ``*_API_BASE_URL``, or moto's DynamoDB through ``AWS_ENDPOINT_URL_DYNAMODB``);
once a matching request has been applied upstream, the proxy either kills the function's busy
containers at once (``kill``: the invocation ends in ``Runtime.ExitError``, as when a Lambda host dies)
or holds the answer until the function's own timeout ends the invocation (``timeout``:
``Sandbox.Timedout``). The container's environment is restored afterwards; nothing in ``functions/``
or ``layers/`` knows.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from tidings_local.chaos.proxy import CrashPoint, CrashPredicate, FaultProxy


def provider_accepted(method: str, path_prefix: str) -> CrashPredicate:
    """The provider accepted the request (any 2xx answer to ``method path_prefix...``)."""

    def predicate(m: str, path: str, headers: dict[str, str], body: bytes, status: int) -> bool:
        return m == method and path.startswith(path_prefix) and 200 <= status < 300

    return predicate


WRITES = ("PutItem", "UpdateItem", "TransactWriteItems")


def dynamodb_write(
    table: str, containing: str | None = None, operations: tuple[str, ...] = WRITES
) -> CrashPredicate:
    """A successful DynamoDB write (one of ``operations``) to ``table`` whose body holds ``containing``."""

    def predicate(m: str, path: str, headers: dict[str, str], body: bytes, status: int) -> bool:
        target = next((v for k, v in headers.items() if k.lower() == "x-amz-target"), "")
        if target.rpartition(".")[2] not in operations or status >= 300:
            return False
        text = body.decode("utf-8", "replace")
        return f'"{table}"' in text and (containing is None or containing in text)

    return predicate


@contextlib.contextmanager
def crash_point(
    system: Any,
    logical_id: str,
    variable: str,
    upstream: str,
    predicate: CrashPredicate,
    *,
    mode: str = "kill",
    timeout: float | None = None,
) -> Iterator[CrashPoint]:
    """Arm one crash of ``logical_id``'s container when ``predicate`` matches a request it sends to
    ``upstream`` (reached through the environment variable ``variable``). ``timeout`` shortens the
    function's timeout for the duration (the ``timeout`` mode waits it out)."""
    pool = system.runtime.pool(logical_id)
    proxy = FaultProxy(upstream, f"crash-{logical_id}")
    held = threading.Event()
    if mode == "kill":
        action = pool.kill_busy
    elif mode == "timeout":
        limit = (timeout or pool.spec.timeout) + 5

        def action() -> None:
            held.wait(limit)  # the runtime's timeout kills the container meanwhile

    else:
        raise ValueError(f"mode must be kill or timeout, not {mode!r}")
    point = proxy.crash_after(predicate, action)
    saved_value = pool.spec.environment.get(variable)
    saved_timeout = pool.spec.timeout
    if timeout is not None:
        pool.spec.timeout = timeout
    system.set_function_env(logical_id, {variable: proxy.url})
    try:
        yield point
    finally:
        held.set()
        pool.spec.timeout = saved_timeout
        if saved_value is None:
            pool.spec.environment.pop(variable, None)
        else:
            pool.spec.environment[variable] = saved_value
        pool.recycle()
        proxy.close()
