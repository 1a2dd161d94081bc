"""Fixtures for every test folder: moto in-process, the provider secrets the sandboxes accept, and the
layer's log lines as its formatter writes them (for the checks that nothing sensitive is logged).

Collection fails if a test file does not say what kind of test it is (``pytestmark`` with exactly one of
the ``unit``, ``integration`` and ``e2e`` markers, the one of the folder it lives in), so ``-m`` selects
the suite by cost.
"""

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tidings.observability import logger as tidings_logger
from tidings_local.sandboxes import credentials

TEST_REGION = "eu-west-1"
TESTS = Path(__file__).parent
KINDS = ("unit", "integration", "e2e")


def _module_marks(module) -> set[str]:
    marks = getattr(module, "pytestmark", [])
    return {mark.name for mark in (marks if isinstance(marks, list) else [marks])}


def _xdist_group(item: pytest.Item) -> str | None:
    """The unit of work a pytest-xdist worker takes whole (``make test`` runs ``--dist loadgroup``): all
    of tests/e2e (one local system per worker, built once), or a file whose tests share a module- or
    session-scoped fixture (built once per worker that runs them). Other tests go one by one."""
    relative = item.path.relative_to(TESTS) if item.path.is_relative_to(TESTS) else item.path
    if relative.parts[0] == "e2e":
        return "e2e"
    fixtures = getattr(item, "_fixtureinfo", None)
    definitions = fixtures.name2fixturedefs.values() if fixtures else []
    shared = any(
        definition.scope in ("module", "package", "session") and definition.baseid
        for chain in definitions
        for definition in chain
    )
    return str(relative) if shared else None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = _xdist_group(item) if item.get_closest_marker("xdist_group") is None else None
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
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
