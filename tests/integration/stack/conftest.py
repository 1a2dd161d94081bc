"""A local system built from the fixture template, shared by the tests of one module."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

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


@pytest.fixture(scope="module")
def probe_system(logs: LogCapture) -> Iterator[LocalSystem]:
    # moto's backends are process-wide: one system per module, torn down before the next one starts.
    with LocalSystem.start(FIXTURE_TEMPLATE, sandboxes=False, log_sink=logs) as system:
        yield system


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
