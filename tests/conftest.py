"""Fixtures for every test folder: moto in-process, the provider secrets the sandboxes accept, and the
layer's log lines as its formatter writes them (for the checks that nothing sensitive is logged).

Collection fails if a test file does not say what kind of test it is (``pytestmark`` with exactly one of
the ``unit``, ``integration`` and ``e2e`` markers, the one of the folder it lives in), so ``-m`` selects
the suite by cost.
"""

import functools
import json
import logging
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from moto import mock_aws

from tidings.observability import logger as tidings_logger
from tidings_local.sandboxes import credentials

TEST_REGION = "eu-west-1"
TESTS = Path(__file__).parent
KINDS = ("unit", "integration", "e2e")

# moto gives every test a fresh boto3 default session, and a new botocore session reads and parses the
# service models (JSON, a few hundred kB each) again. Every session of the test process shares one data
# loader instead, which keeps what it read: the same read-only data one long-lived session would share.
botocore.session.create_loader = functools.cache(botocore.session.create_loader)  # type: ignore[assignment]


def _module_marks(module) -> set[str]:
    marks = getattr(module, "pytestmark", [])
    return {mark.name for mark in (marks if isinstance(marks, list) else [marks])}


# --- how `make test` spreads the suite over its pytest-xdist workers -------------------------------------

#: Where the controller keeps each test's seconds (setup + call + teardown) from the runs before.
SECONDS_CACHE_KEY = "tidings/test-seconds"
#: A test's seconds when no earlier run measured it and its work unit is not in UNIT_SECONDS, by folder:
#: rough, only the order of the work units depends on them.
DEFAULT_SECONDS = {"e2e": 20.0, "integration": 3.0, "contract": 1.0, "unit": 0.3}
#: Each work unit's seconds from one full run, committed, so a fresh clone (CI) hands out the costly
#: units first as a warm checkout does: `make test-seconds` rewrites it from the last run's cache.
UNIT_SECONDS_FILE = TESTS / "test-seconds.json"


def unit_seconds(measured: dict[str, float]) -> dict[str, float]:
    """Per work unit, the sum of its tests' measured seconds (the file ``make test-seconds`` writes)."""
    units: dict[str, float] = {}
    for nodeid, seconds in measured.items():
        unit = work_unit(nodeid)
        units[unit] = units.get(unit, 0.0) + seconds
    return {unit: round(seconds, 1) for unit, seconds in sorted(units.items())}


#: Folders whose files share a package-scoped fixture (one local stack): each is one work unit.
SHARED_FOLDERS = ("tests/integration/security/",)
#: Files that share a fixture beyond their module (each file's own module-scoped fixtures need nothing
#: here), by the unit of work they form: one worker runs them together and builds the fixture once.
SHARED_UNITS = {
    f"tests/integration/stack/{name}": "tests/integration/stack (probe_system)"
    for name in (
        "test_api.py",
        "test_invoke.py",
        "test_local_dynamodb.py",
        "test_sqs_poller.py",
        "test_state_machine.py",
    )
}


def work_unit(nodeid: str) -> str:
    """What one pytest-xdist worker takes whole: a test file, so a module-scoped fixture (a local stack,
    a browser) is built once, on one worker; a whole folder of ``SHARED_FOLDERS``, or the files of one
    ``SHARED_UNITS`` entry together."""
    path = nodeid.split("::", 1)[0]
    folder = next((folder for folder in SHARED_FOLDERS if path.startswith(folder)), None)
    return folder or SHARED_UNITS.get(path, path)


def _folder(unit: str) -> str:
    parts = Path(unit).parts
    return parts[1] if len(parts) > 2 and parts[0] == TESTS.name else ""


class _CostliestFirst(OrderedDict):
    """The scheduler's queue of work units, handing out the costliest unit left (longest processing
    time first: both workers end close together, the last units being the cheap ones).

    Every ``tests/e2e`` file comes before any other: a worker's e2e files share one session-scoped local
    system, and a file that starts its own (``tests/integration/stack``) stops it, as moto holds one
    state per process. Taken in this order, no worker runs an e2e file after another kind.
    """

    def __init__(self, seconds: dict[str, float], units: dict[str, float] | None = None) -> None:
        super().__init__()
        self.seconds = seconds
        self.units = units or {}

    def cost(self, unit: str) -> tuple[bool, float]:
        folder = _folder(unit)
        nodeids = self[unit]
        if unit in self.units and not any(nodeid in self.seconds for nodeid in nodeids):
            return folder == "e2e", self.units[unit]
        default = DEFAULT_SECONDS.get(folder, 1.0)
        return folder == "e2e", sum(self.seconds.get(nodeid, default) for nodeid in nodeids)

    def popitem(self, last: bool = True) -> tuple[str, dict[str, bool]]:
        unit = max(self, key=self.cost)
        return unit, self.pop(unit)


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` (``make test``): one file per work unit, costliest first. pytest-xdist's own
    loadgroup scheduler reads groups from node ids, which pytest 9 no longer lets a plugin rename."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class CostOrderedScheduling(LoadScopeScheduling):
        def __init__(self, config: pytest.Config, log: Any) -> None:
            super().__init__(config, log)
            cache = getattr(config, "cache", None)  # None with -p no:cacheprovider
            committed = json.loads(UNIT_SECONDS_FILE.read_text()) if UNIT_SECONDS_FILE.exists() else {}
            self.workqueue = _CostliestFirst(cache.get(SECONDS_CACHE_KEY, {}) if cache else {}, committed)

        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return CostOrderedScheduling(config, log)


_measured: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _measured[report.nodeid] = _measured.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The controller (or a run without workers) keeps the seconds measured for the next run's order."""
    cache = getattr(session.config, "cache", None)
    if cache is None or hasattr(session.config, "workerinput") or not _measured:
        return
    cache.set(SECONDS_CACHE_KEY, {**cache.get(SECONDS_CACHE_KEY, {}), **_measured})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    unmarked: dict[str, str] = {}
    seen: set[Path] = set()
    for item in items:
        module = getattr(item, "module", None)
        if module is None or item.path in seen:
            continue
        seen.add(item.path)
        folder = item.path.relative_to(TESTS).parts[0] if item.path.is_relative_to(TESTS) else None
        kinds = sorted(_module_marks(module) & set(KINDS))
        expected = folder if folder in KINDS else None
        if len(kinds) != 1 or (expected and kinds != [expected]):
            wanted = expected or " / ".join(KINDS)
            unmarked[str(item.path.relative_to(TESTS.parent))] = f"pytestmark = pytest.mark.{wanted}"
    if unmarked:
        listed = "\n".join(f"  {path}: needs {fix}" for path, fix in sorted(unmarked.items()))
        raise pytest.UsageError(f"test files without their kind marker:\n{listed}")


@pytest.fixture
def moto_aws(monkeypatch):
    """moto in-process, with fake credentials and no endpoint override: a developer's AWS_ENDPOINT_URL
    (say, the local system's) would otherwise send boto3 past moto. State machines started here run
    for real on moto's ASL interpreter."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": TEST_REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


@pytest.fixture
def provider_secret_arns(moto_aws) -> dict[str, str]:
    """One Secrets Manager secret per provider (stripe, sendgrid, twilio), holding the credentials the
    sandboxes accept, as the template's secrets hold them; the ARN of each by provider."""
    client = boto3.client("secretsmanager", region_name=TEST_REGION)
    return {
        name: client.create_secret(Name=f"tidings/test/{name}", SecretString=json.dumps(value))["ARN"]
        for name, value in credentials.provider_secret_values().items()
    }


class TidingsLogLines(logging.Handler):
    """Every record of the layer's logger, formatted (and so redacted) as it would be written."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(tidings_logger.registered_formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines() -> Iterator[TidingsLogLines]:
    handler = TidingsLogLines()
    logging.getLogger(tidings_logger.name).addHandler(handler)
    yield handler
    logging.getLogger(tidings_logger.name).removeHandler(handler)
