"""Fault injection: what a sandbox does instead of (or before) answering like the provider.

A fault targets every request whose path starts with ``path_prefix`` (all requests when unset) and
fires ``count`` times (for ever when unset). Control requests under ``/_sandbox/`` are never faulted,
so a test can always clear what it injected.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

FAULT_KINDS = ("latency", "status", "reset", "hang", "outage")

#: How long a hang lasts when no delay is given: longer than any sane client timeout.
DEFAULT_HANG_SECONDS = 300.0

_ids = itertools.count(1)


class FaultError(ValueError):
    """A fault specification that cannot be applied (answered with 400 by the control API)."""


@dataclass
class Fault:
    kind: str
    count: int | None = None
    path_prefix: str | None = None
    status: int | None = None
    retry_after: int | None = None
    delay: float | None = None
    id: int = field(default_factory=lambda: next(_ids))
    fired: int = 0

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Fault:
        kind = spec.get("kind")
        if kind not in FAULT_KINDS:
            raise FaultError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        fault = cls(
            kind=kind,
            count=_optional(spec, "count", int),
            path_prefix=spec.get("path_prefix") or None,
            status=_optional(spec, "status", int),
            retry_after=_optional(spec, "retry_after", int),
            delay=_optional(spec, "delay", float),
        )
        if fault.count is not None and fault.count < 1:
            raise FaultError("count must be at least 1 (omit it for a permanent fault)")
        if kind == "status" and (fault.status is None or not 400 <= fault.status <= 599):
            raise FaultError("a status fault needs status between 400 and 599")
        if kind == "latency" and (fault.delay is None or fault.delay < 0):
            raise FaultError("a latency fault needs delay (seconds, >= 0)")
        if fault.delay is not None and fault.delay < 0:
            raise FaultError("delay must be >= 0")
        return fault

    def matches(self, path: str) -> bool:
        return self.path_prefix is None or path.startswith(self.path_prefix)

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.fired >= self.count

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["remaining"] = None if self.count is None else self.count - self.fired
        return data


def _optional(spec: dict[str, Any], name: str, kind: type) -> Any:
    value = spec.get(name)
    if value is None:
        return None
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise FaultError(f"{name} must be a number") from exc


class FaultBook:
    """The faults of one sandbox, consumed atomically by concurrent request threads.

    ``released`` is set when faults are cleared (or the sandbox stops): requests paused by a latency
    or hang fault wake up at once, so a test never waits out a delay it no longer wants.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.released = threading.Event()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            if not self._faults:
                self.released = threading.Event()
            self._faults.append(fault)
        return fault

    def clear(self) -> int:
        with self._lock:
            cleared = len(self._faults)
            self._faults = []
            self.released.set()
        return cleared

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def take(self, path: str, kinds: tuple[str, ...]) -> Fault | None:
        """Consume one firing of the first live fault of one of ``kinds`` matching ``path``."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and not fault.exhausted and fault.matches(path):
                    fault.fired += 1
                    return fault
        return None

    def take_latency(self, path: str) -> float:
        """Total delay of every live latency fault matching ``path`` (each consumes one firing)."""
        total = 0.0
        with self._lock:
            for fault in self._faults:
                if fault.kind == "latency" and not fault.exhausted and fault.matches(path):
                    fault.fired += 1
                    total += fault.delay or 0.0
        return total
