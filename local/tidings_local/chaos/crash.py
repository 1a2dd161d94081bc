"""Crash points: kill a function's container at a step boundary, through configuration only.

A :class:`~tidings_local.chaos.proxy.FaultProxy` is put in front of what the function talks to (a
provider sandbox through its ``*_API_BASE_URL``, or moto's DynamoDB through ``AWS_ENDPOINT_URL_DYNAMODB``);
once a matching request has been applied upstream, the proxy either kills the function's busy
containers at once (``kill``: the invocation ends in ``Runtime.ExitError``, as when a Lambda host dies)
or holds the answer until the function's own timeout ends the invocation (``timeout``:
``Sandbox.Timedout``). Nothing in ``functions/`` or ``layers/`` knows.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
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


#: The sending functions, the provider each calls and where it finds it.
SENDERS = {
    "stripe": ("ChargePaymentFunction", "STRIPE_API_BASE_URL"),
    "sendgrid": ("SendEmailFunction", "SENDGRID_API_BASE_URL"),
    "twilio": ("SendSmsFunction", "TWILIO_API_BASE_URL"),
}


@dataclass
class CrashProxies:
    """Pass-through proxies, until armed, in front of each sending function's provider and DynamoDB."""

    providers: dict[str, FaultProxy]  # by provider
    dynamodb: dict[str, FaultProxy]  # by function logical id

    def close(self) -> None:
        for proxy in [*self.providers.values(), *self.dynamodb.values()]:
            proxy.close()


def install_crash_proxies(system: Any) -> CrashProxies:
    """Point the sending functions at the proxies; call it before their first container starts (an
    environment reaches new containers only), so arming a crash never costs a cold start."""
    providers: dict[str, FaultProxy] = {}
    dynamodb: dict[str, FaultProxy] = {}
    for provider, (logical_id, variable) in SENDERS.items():
        environment = system.runtime.pool(logical_id).spec.environment
        providers[provider] = FaultProxy(system.sandboxes[provider].base_url, provider)
        dynamodb[logical_id] = FaultProxy(system.moto_url, f"dynamodb-{logical_id}")
        environment[variable] = providers[provider].url
        environment["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb[logical_id].url
    return CrashProxies(providers, dynamodb)


@contextlib.contextmanager
def armed(
    proxy: FaultProxy,
    pool: Any,
    predicate: CrashPredicate,
    *,
    mode: str = "kill",
    timeout: float | None = None,
) -> Iterator[CrashPoint]:
    """One crash of ``pool``'s busy container once ``predicate`` matches a request through ``proxy``.

    ``kill``: the container is killed at once. ``timeout``: the answer is held until the function's
    timeout (shortened to ``timeout`` seconds meanwhile) ends the invocation.
    """
    held = threading.Event()
    saved_timeout = pool.spec.timeout
    if mode == "kill":
        action = pool.kill_busy
    elif mode == "timeout":
        limit = (timeout or pool.spec.timeout) + 5

        def action() -> None:
            # The held invocation keeps the short timeout it started with; its retries get the full one.
            pool.spec.timeout = saved_timeout
            held.wait(limit)  # the runtime's timeout kills the container meanwhile

    else:
        raise ValueError(f"mode must be kill or timeout, not {mode!r}")
    if timeout is not None:
        pool.spec.timeout = timeout
    point = proxy.crash_after(predicate, action)
    try:
        yield point
    finally:
        held.set()
        pool.spec.timeout = saved_timeout
        proxy.clear()
