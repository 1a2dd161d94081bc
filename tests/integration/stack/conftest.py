"""A local system built from the fixture template, shared by the modules that use it (``probe_system``).

moto holds one state per process, so one local system runs at a time in a worker: the probe system is
started again when another module's system stopped it in between. ``make test`` hands the modules that
use it to one worker together (tests/conftest.py, ``SHARED_UNITS``), so it starts once there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tidings_local.stack import system as local_system
from tidings_local.stack.system import LocalSystem

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_TEMPLATE = FIXTURES / "template.yaml"


class LogCapture:
    """Collects the workers' log lines (what a function printed) per logical id."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, logical_id: str, line: str) -> None:
        self.lines.append((logical_id, line))

    def of(self, logical_id: str) -> list[str]:
        return [line for lid, line in self.lines if lid == logical_id]


@pytest.fixture(scope="module")
def logs() -> LogCapture:
    return LogCapture()


class _ProbeSystems:
    """The probe system of this worker, and the log capture of the module using it now."""

    def __init__(self) -> None:
        self.system: LocalSystem | None = None
        self.logs: LogCapture | None = None

    def sink(self, logical_id: str, line: str) -> None:
        if self.logs is not None:
            self.logs(logical_id, line)

    def running(self) -> LocalSystem:
        # Another module's system stops this one when it starts (local_system holds the active one).
        if self.system is None or local_system._active is not self.system:
            self.system = LocalSystem.start(FIXTURE_TEMPLATE, sandboxes=False, log_sink=self.sink)
        return self.system


@pytest.fixture(scope="session")
def probe_systems() -> Iterator[_ProbeSystems]:
    systems = _ProbeSystems()
    yield systems
    if systems.system is not None:
        systems.system.stop()


@pytest.fixture(scope="module")
def probe_system(probe_systems: _ProbeSystems, logs: LogCapture) -> Iterator[LocalSystem]:
    """The fixture template's system, shared with the other modules that use it: none of them leaves
    anything behind that another one reads (their resources, functions and routes are their own)."""
    system = probe_systems.running()
    probe_systems.logs = logs
    yield system
    probe_systems.logs = None


def wait_for(check: Callable[[], Any], timeout: float = 30, interval: float = 0.2) -> Any:
    """Poll until ``check`` returns something truthy (a condition to reach, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        time.sleep(interval)


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., Any]:
    return wait_for
