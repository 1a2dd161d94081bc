"""schemathesis against the OpenAPI document the local system serves, with a token holding every scope.

Requests generated from the document (bounded: ``EXAMPLES`` per operation) reach the real functions
through the local gateway: none may answer 5xx, and every answer must be one the document declares, with
the declared content type and body schema. (Generated bodies rarely pass every rule the document cannot
express, such as Stripe's minimum per currency, so most POSTs are 422s: the point is that none is a 5xx
or an undeclared answer.) The module runs after the other attacks of this folder (file
order), so the sagas its valid requests start cannot disturb their "nothing happened" counts.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tidings_local.stack.system import LocalSystem

pytestmark = pytest.mark.integration

#: Generated requests per operation: enough to cover each body's shapes, cheap enough for make test.
EXAMPLES = 10
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def _bearer(system: LocalSystem) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {system.token(scope='notifications/write notifications/read tidings/ops')}"
    }


@pytest.fixture(scope="module")
def served_schema(system: LocalSystem) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{system.api_url}/openapi.json", headers=_bearer(system))


def _operations(schema: schemathesis.BaseSchema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


def test_generated_requests_get_declared_answers_and_never_a_5xx(
    served_schema: schemathesis.BaseSchema, system: LocalSystem
) -> None:
    # (Hypothesis driven directly: schemathesis's own pytest plugin does not run on pytest 9.)
    headers = _bearer(system)
    failures: list[str] = []
    seen: Counter[tuple[str, int]] = Counter()
    for operation in _operations(served_schema):

        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
        )
        @given(case=operation.as_strategy())
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(base_url=system.api_url, headers=headers)
            seen[(f"{case.method} {case.path}", response.status_code)] += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except Exception as failure:  # schemathesis's FailureGroup: every check that failed
                failures.append(f"{case.method} {case.path} -> {response.status_code}: {str(failure)[:300]}")

        fuzz()
    assert failures == []
    # Every operation was exercised, and the listing (no body, no id to guess) succeeds
    assert {operation for operation, _ in seen} == {
        f"{operation.method.upper()} {operation.path}" for operation in _operations(served_schema)
    }
    assert any(op == "GET /notifications" and 200 <= status < 300 for op, status in seen), dict(seen)
