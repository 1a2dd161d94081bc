"""The provider sandboxes in a process of their own.

In the local system's main process a sandbox's request waits for the interpreter behind the API, the
pollers and the Lambda pools' threads; a rate-limited sandbox then judges a request's arrival some
milliseconds after it arrived, and a request the shared bucket paced exactly looks early. In a process
of their own they answer, and time, each request as it comes. Tests keep the same handle:
``system.sandboxes[name].base_url`` and ``.control`` (the control API is HTTP either way).

The child ends when its stdin closes (``stop()``, or this process dying however it dies), and ignores
Ctrl-C, as the moto process does (stack/child.py).

    python -m tidings_local.stack.sandbox_process <host> <json: {name: [port, webhook URL or null]}>
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any

from tidings_local.stack.child import ChildProcess


class RemoteSandbox:
    """What the local system and tests use of a sandbox that runs in the sandbox process."""

    def __init__(self, name: str, base_url: str, group: SandboxProcess) -> None:
        self.name = name
        self.base_url = base_url
        self._group = group
        self._control: Any = None

    @property
    def control(self) -> Any:
        if self._control is None:
            from tidings_local.sandboxes.control import SandboxClient

            self._control = SandboxClient(self.base_url)
        return self._control

    def stop(self) -> None:
        if self._control is not None:
            self._control.close()
        self._group.stop()


class SandboxProcess:
    """The child serving every sandbox; ``start`` returns their handles once they listen."""

    def __init__(self, host: str, sandboxes: Mapping[str, tuple[int, str | None]]) -> None:
        self.host = host
        self.sandboxes = dict(sandboxes)
        self._child = ChildProcess("tidings_local.stack.sandbox_process", "the sandbox process")

    def start(self) -> dict[str, RemoteSandbox]:
        urls: dict[str, str] = self._child.start(self.host, json.dumps(self.sandboxes))
        return {name: RemoteSandbox(name, url, self) for name, url in urls.items()}

    @property
    def pid(self) -> int | None:
        return self._child.pid

    def stop(self) -> None:
        self._child.stop()


def serve(host: str, sandboxes: dict[str, list[Any]]) -> None:
    from tidings_local.sandboxes import start_sandbox

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us by closing stdin
    started = {
        name: start_sandbox(name, host=host, port=int(port), webhook_url=webhook_url)
        for name, (port, webhook_url) in sandboxes.items()
    }
    sys.stdout.write(json.dumps({name: sandbox.base_url for name, sandbox in started.items()}) + "\n")
    sys.stdout.flush()
    sys.stdin.read()  # until the parent closes it, or dies
    for sandbox in started.values():
        with contextlib.suppress(Exception):
            sandbox.stop()
    os._exit(0)  # webhook deliveries still queued must not hold the exit


if __name__ == "__main__":
    serve(sys.argv[1], json.loads(sys.argv[2]))
