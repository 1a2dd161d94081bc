"""A helper process of the local system (moto's, the sandboxes'), tied to this one by its stdin.

The child writes one JSON line on stdout once it serves (its ports or URLs), then reads stdin until it
closes: when ``stop()`` closes it, and when this process dies however it dies (the kernel closes the
pipe), so a crash leaves no server behind. Children ignore Ctrl-C: the terminal sends SIGINT to the whole
process group, and the parent decides when they stop.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from typing import Any

#: How long a child may take to import what it serves and bind its ports on a busy machine (a deadline).
START_TIMEOUT_SECONDS = 120


class ChildProcess:
    """``start`` runs ``python -m <module> <args>`` and returns its ready line, parsed."""

    def __init__(self, module: str, what: str) -> None:
        self.module = module
        self.what = what  # for the error when it does not start: "the moto server process"
        self._process: subprocess.Popen[str] | None = None

    def start(self, *args: str) -> Any:
        self._process = process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", self.module, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        stdout = process.stdout
        assert stdout is not None
        ready: list[str] = []
        reader = threading.Thread(target=lambda: ready.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_SECONDS)
        if not ready or not ready[0]:
            self.stop()
            raise RuntimeError(f"{self.what} did not start (its errors are on stderr above)")
        return json.loads(ready[0])

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        if self._process is None:
            return
        process, self._process = self._process, None
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.close()  # the child's signal to stop
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
