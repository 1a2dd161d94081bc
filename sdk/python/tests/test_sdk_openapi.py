"""The SDK's models and routes against the notify API's OpenAPI document, the source of truth.

``docs/openapi.json`` is the document the API serves (``tests/contract/test_contract_openapi.py`` keeps it
equal to what the code generates). Each failure names what disagrees and where: a route or method the SDK
calls that the document lacks, or one the document has that the SDK does not call; a request or answer
field missing on either side; a field of another type, or required on one side only; a query or header
parameter. Value rules (lengths, patterns, the currency list) are the API's to check and are not compared;
the SDK's enums are compared with the document's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tidings.notifications.models import FINAL_STATUSES as LAYER_FINAL_STATUSES
from tidings_sdk import ROUTES, models

pytestmark = pytest.mark.unit

DOCUMENT = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"
#: Routes for operators (scope tidings/ops), not for shops: the SDK leaves them out on purpose.
OPERATOR_ROUTES = {
    ("GET", "/audit"),
    ("GET", "/suppressions"),
    ("POST", "/suppressions"),
    ("DELETE", "/suppressions/{suppression_id}"),
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text())


class Schemas:
    """Compares one JSON schema of the document with one of an SDK model, collecting disagreements."""

    def __init__(self, document: dict[str, Any], model: type[BaseModel], direction: str) -> None:
        self.doc_defs = document["components"]["schemas"]
        sdk = model.model_json_schema(ref_template="#/$defs/{model}")
        self.sdk_defs = sdk.pop("$defs", {})
        self.sdk_root = sdk
        self.direction = direction
        self.problems: list[str] = []

    @staticmethod
    def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def _branches(self, schema: dict[str, Any], defs: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        schema = self._resolve(schema, defs)
        branches = [self._resolve(b, defs) for b in schema.get("anyOf", [schema])]
        concrete = [b for b in branches if b.get("type") != "null"]
        return concrete, len(concrete) < len(branches)

    @staticmethod
    def _kind(schema: dict[str, Any]) -> str:
        if "properties" in schema:
            return "model"
        kind = schema.get("type")
        if kind == "object":
            extra = schema.get("additionalProperties", True)
            return "map" if isinstance(extra, dict) else "free-object"
        return str(kind) if kind else "any"

    def compare(self, doc: dict[str, Any], sdk: dict[str, Any], where: str) -> None:
        doc_branches, doc_null = self._branches(doc, self.doc_defs)
        sdk_branches, sdk_null = self._branches(sdk, self.sdk_defs)
        if doc_null != sdk_null:
            self.problems.append(f"{where}: nullable in the document: {doc_null}, in the SDK: {sdk_null}")
        doc_kinds = sorted(self._kind(b) for b in doc_branches)
        sdk_kinds = sorted(self._kind(b) for b in sdk_branches)
        if doc_kinds == ["free-object"] and sdk_kinds in (["model"], ["free-object"], ["map"]):
            # The document leaves the object open: the SDK may type it, but must keep what it does not know
            if sdk_branches[0].get("additionalProperties") is False:
                self.problems.append(f"{where}: an open object in the document, closed in the SDK")
            return
        if doc_kinds != sdk_kinds:
            self.problems.append(f"{where}: type {doc_kinds} in the document, {sdk_kinds} in the SDK")
            return
        for doc_branch, sdk_branch in zip(doc_branches, sdk_branches, strict=True):
            kind = self._kind(doc_branch)
            if kind == "model":
                self._model(doc_branch, sdk_branch, where)
            elif kind == "array":
                self.compare(doc_branch.get("items", {}), sdk_branch.get("items", {}), f"{where}[]")
            elif kind == "map":
                values = (doc_branch["additionalProperties"], sdk_branch["additionalProperties"])
                self.compare(*values, f"{where}{{}}")

    def _model(self, doc: dict[str, Any], sdk: dict[str, Any], where: str) -> None:
        doc_props, sdk_props = doc.get("properties", {}), sdk.get("properties", {})
        for name in sorted(doc_props.keys() - sdk_props.keys()):
            self.problems.append(f"{where}.{name}: in the document, not in the SDK's model")
        for name in sorted(sdk_props.keys() - doc_props.keys()):
            self.problems.append(f"{where}.{name}: in the SDK's model, not in the document")
        doc_required, sdk_required = set(doc.get("required", [])), set(sdk.get("required", []))
        for name in sorted(doc_required ^ sdk_required):
            side = "the document" if name in doc_required else "the SDK"
            self.problems.append(f"{where}.{name}: required only in {side}")
        if self.direction == "request" and (doc.get("additionalProperties") is False) != (
            sdk.get("additionalProperties") is False
        ):
            self.problems.append(f"{where}: unknown fields refused on one side only")
        for name in sorted(doc_props.keys() & sdk_props.keys()):
            self.compare(doc_props[name], sdk_props[name], f"{where}.{name}")

    def check(self, doc_schema: dict[str, Any], where: str) -> list[str]:
        self.compare(doc_schema, self.sdk_root, where)
        return self.problems


def _json_schema(holder: dict[str, Any]) -> dict[str, Any]:
    return holder["content"]["application/json"]["schema"]


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def test_the_sdk_calls_every_shop_route_of_the_document_and_no_other(document):
    in_document = _operations(document) - OPERATOR_ROUTES
    in_sdk = {(route.method, route.path) for route in ROUTES.values()}
    assert in_sdk - in_document == set(), "routes the SDK calls that the API does not have"
    assert in_document - in_sdk == set(), "API routes the SDK lacks: add them to tidings_sdk.client.ROUTES"
    assert _operations(document) >= OPERATOR_ROUTES


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_each_route_sends_and_reads_what_the_document_describes(document, name):
    route = ROUTES[name]
    operation = document["paths"][route.path][route.method.lower()]
    where = f"{route.method} {route.path}"
    problems: list[str] = []

    # The request body
    body = operation.get("requestBody")
    if route.request is None:
        assert body is None, f"{where}: the document takes a body the SDK does not model"
    else:
        assert body is not None, f"{where}: the SDK sends a body the document does not take"
        problems += Schemas(document, route.request, "request").check(_json_schema(body), f"{where} request")

    # The success answer
    answers = operation["responses"]
    assert str(route.status) in answers, f"{where}: the document has no {route.status} answer"
    schema = _json_schema(answers[str(route.status)])
    problems += Schemas(document, route.answer, "response").check(schema, f"{where} {route.status}")

    # The parameters
    parameters = operation.get("parameters", [])
    query = {p["name"] for p in parameters if p["in"] == "query"}
    headers = {p["name"].lower() for p in parameters if p["in"] == "header"}
    path_names = {p["name"] for p in parameters if p["in"] == "path"}
    assert query == set(route.query), f"{where}: query parameters"
    assert ("idempotency-key" in headers) == route.idempotency_key, f"{where}: the Idempotency-Key header"
    assert path_names == set(re.findall(r"{(\w+)}", route.path)), f"{where}: path parameters"
    assert problems == []


@pytest.mark.parametrize(
    ("model", "component"),
    [(models.ErrorBody, "ErrorBody"), (models.NotificationRequest, "NotificationRequest")],
)
def test_the_error_body_and_the_request_match_their_components(document, model, component):
    # Every error answer of the shop routes is this one body (the gateway's 403 aside)
    direction = "request" if component == "NotificationRequest" else "response"
    schema = {"$ref": f"#/components/schemas/{component}"}
    assert Schemas(document, model, direction).check(schema, component) == []
    for method, path in _operations(document) - OPERATOR_ROUTES:
        for status, answer in document["paths"][path][method.lower()]["responses"].items():
            if status.startswith("4") and status != "403" and "content" in answer:
                refs = json.dumps(_json_schema(answer))
                assert "#/components/schemas/ErrorBody" in refs, f"{method} {path} {status}"


def test_the_sdk_statuses_and_policies_are_the_documents_enums(document):
    schemas = document["components"]["schemas"]
    # (which statuses are final the document does not say: the layer's own list does)
    assert {str(status) for status in LAYER_FINAL_STATUSES} == models.FINAL_STATUSES
    assert tuple(schemas["NotificationStatus"]["enum"]) == models.NOTIFICATION_STATUSES
    assert tuple(schemas["ChannelStatus"]["enum"]) == models.CHANNEL_STATUSES
    policy = models.DeliveryPolicy.model_json_schema()["properties"]["email"]
    assert schemas["ChannelPolicy"]["enum"] == policy["enum"]


def test_the_check_finds_a_field_the_sdk_lacks_and_a_type_that_differs(document):
    # A check that can fail: the document with a new required field and a narrowed type
    edited = json.loads(json.dumps(document))
    accepted = edited["components"]["schemas"]["Accepted"]
    accepted["properties"]["queued_at"] = {"type": "string"}
    accepted["required"].append("queued_at")
    accepted["properties"]["status"] = {"type": "integer"}
    problems = Schemas(edited, models.Accepted, "response").check(
        {"$ref": "#/components/schemas/Accepted"}, "Accepted"
    )
    assert problems == [
        "Accepted.queued_at: in the document, not in the SDK's model",
        "Accepted.queued_at: required only in the document",
        "Accepted.status: type ['integer'] in the document, ['string'] in the SDK",
    ]
