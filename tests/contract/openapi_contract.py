"""Requests and responses checked against a provider's own OpenAPI description (Twilio, SendGrid).

``Description.request_problems(request)`` and ``Description.response_problems(response)`` return what
disagrees with the description, one readable line each (empty: it conforms). Checked: the path and method
name a documented operation; path, query and header parameters are documented, present when required,
and match their schemas; the body's content type is one the operation takes and the body matches its
schema (a form body decoded by the schema's own types); the credentials use the documented security
scheme; the response status is documented and its body matches the documented schema.

Stricter than a plain schema check, on purpose: a property the description does not name is a problem
(a renamed or misspelt field must fail), and a success response must carry every documented property
(Twilio and SendGrid return every property of a resource, ``null`` when unknown). Formats the providers
define (``phone-number``, ``date-time-rfc-2822``) are checked as they describe them. SendGrid's 3.1
descriptions still mark nullable fields with 3.0's ``nullable: true``; it is read as 3.0 defines it.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from jsonschema import FormatChecker
from openapi_schema_validator import OAS30Validator, OAS31Validator

VENDOR = Path(__file__).parent / "vendor"
_METHODS = ("get", "post", "put", "patch", "delete")
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def _formats() -> FormatChecker:
    checker = FormatChecker()

    @checker.checks("phone-number")
    def phone_number(value: object) -> bool:
        return not isinstance(value, str) or bool(_E164.match(value))

    @checker.checks("date-time-rfc-2822", raises=(TypeError, ValueError))
    def rfc_2822(value: object) -> bool:
        return not isinstance(value, str) or parsedate_to_datetime(value) is not None

    @checker.checks("uri")
    def uri(value: object) -> bool:
        # Twilio's own examples give resource "uri" fields as paths (/2010-04-01/...): an absolute URI
        # or an absolute path.
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return bool(parts.scheme and parts.netloc) or (value.startswith("/") and not parts.scheme)

    return checker


FORMATS = _formats()


@dataclass(frozen=True)
class Operation:
    description: Description
    template: str
    method: str
    spec: dict[str, Any]
    path_params: dict[str, str]

    @property
    def name(self) -> str:
        return self.spec.get("operationId") or f"{self.method.upper()} {self.template}"

    def parameters(self) -> list[dict[str, Any]]:
        item = self.description.spec["paths"][self.template]
        params = [self.description.resolve(p) for p in item.get("parameters", [])]
        params += [self.description.resolve(p) for p in self.spec.get("parameters", [])]
        return params


#: Where a vendored description contradicts the provider's own documentation elsewhere, the correction
#: applied on loading (the files stay as vendored): (file, JSON pointer, replacement schema, why).
CORRECTIONS: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "sendgrid_templates_v3.json",
        "/components/schemas/TransactionalTemplate/properties/id",
        {"type": "string", "anyOf": [{"format": "uuid"}, {"pattern": "^d-[0-9a-f]{32}$"}]},
        "a dynamic template's id is d- and 32 hex digits (mail/send's template_id description and every "
        "dynamic template SendGrid creates); the templates description types every id as a uuid",
    ),
    (
        "sendgrid_templates_v3.json",
        "/paths/~1v3~1templates~1{template_id}~1versions/parameters/0/schema",
        {"type": "string"},
        "the same id in the versions route's path (its GetTemplate sibling already takes any string)",
    ),
]


class Description:
    """One vendored OpenAPI file (with its ``CORRECTIONS``)."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.spec: dict[str, Any] = json.loads((VENDOR / filename).read_text())
        self.oas31 = str(self.spec.get("openapi", "")).startswith("3.1")
        for corrected, pointer, schema, _why in CORRECTIONS:
            if corrected == filename:
                *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]
                node: Any = self.spec
                for part in parents:
                    node = node[int(part)] if isinstance(node, list) else node[part]
                node[last] = schema

    # --- schema plumbing ----------------------------------------------------------------------------
    def resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            target: Any = self.spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def _prepared(self, node: Any) -> Any:
        """A copy that refuses undocumented properties and reads ``nullable`` in 3.1 files too."""
        if isinstance(node, list):
            return [self._prepared(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: self._prepared(value) for key, value in node.items()}
        composed = any(k in out for k in ("allOf", "anyOf", "oneOf"))
        if "properties" in out and "additionalProperties" not in out and not composed:
            out["additionalProperties"] = False
        if self.oas31 and out.get("nullable") is True and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out

    @cached_property
    def _components(self) -> dict[str, Any]:
        return self._prepared(copy.deepcopy(self.spec.get("components", {})))

    def schema_problems(self, schema: dict[str, Any], instance: Any, where: str) -> list[str]:
        root = {**self._prepared(schema), "components": self._components}
        validator_class = OAS31Validator if self.oas31 else OAS30Validator
        validator = validator_class(root, format_checker=FORMATS)
        problems = []
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
            location = "/".join(str(p) for p in error.absolute_path)
            problems.append(f"{where}{'/' + location if location else ''}: {error.message}")
        return problems

    # --- operations ---------------------------------------------------------------------------------
    def find(self, method: str, path: str) -> Operation | None:
        for template, item in self.spec["paths"].items():
            pattern = "^" + re.sub(r"\\\{([^}]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
            match = re.match(pattern, path)
            if match is None:
                continue
            op = item.get(method.lower())
            if op is not None:
                return Operation(self, template, method.lower(), op, match.groupdict())
        return None

    def paths(self) -> set[tuple[str, str]]:
        return {(m.upper(), p) for p, item in self.spec["paths"].items() for m in item if m in _METHODS}


class ProviderContract:
    """A provider's vendored descriptions together; an operation is looked up in whichever names it."""

    def __init__(self, provider: str, *filenames: str, error_schema: str | None = None) -> None:
        self.provider = provider
        self.descriptions = [Description(name) for name in filenames]
        #: the provider's general error body, for statuses an operation does not list (429, 503)
        self.error_schema = error_schema

    def operation(self, method: str, path: str) -> Operation | None:
        for description in self.descriptions:
            found = description.find(method, path)
            if found is not None:
                return found
        return None

    # --- requests -----------------------------------------------------------------------------------
    def request_problems(self, request: httpx.Request) -> list[str]:
        method, path = request.method, request.url.path
        op = self.operation(method, path)
        if op is None:
            return [f"{method} {path}: no such operation in the {self.provider} description"]
        d, where = op.description, f"{op.name} request"
        problems: list[str] = []
        params = op.parameters()
        # path parameters
        for param in (p for p in params if p.get("in") == "path"):
            value = op.path_params.get(param["name"])
            problems += d.schema_problems(param.get("schema", {}), value, f"{where} path {param['name']}")
        # query parameters: documented, and matching their schemas
        documented_query = {p["name"]: p for p in params if p.get("in") == "query"}
        sent_query = parse_qs(request.url.query.decode(), keep_blank_values=True)
        for name, values in sent_query.items():
            if name not in documented_query:
                problems.append(f"{where}: query parameter {name!r} is not documented")
                continue
            schema = d.resolve(documented_query[name].get("schema", {}))
            problems += d.schema_problems(schema, _coerce(d, schema, values), f"{where} query {name}")
        for name, param in documented_query.items():
            if param.get("required") and name not in sent_query:
                problems.append(f"{where}: required query parameter {name!r} missing")
        # header parameters the operation requires
        for param in (p for p in params if p.get("in") == "header" and p.get("required")):
            if param["name"] not in request.headers:
                problems.append(f"{where}: required header {param['name']!r} missing")
        problems += self._security_problems(op, request, where)
        problems += self._body_problems(op, request, where)
        return problems

    def _security_problems(self, op: Operation, request: httpx.Request, where: str) -> list[str]:
        requirements = op.spec.get("security", op.description.spec.get("security", []))
        schemes = op.description.spec.get("components", {}).get("securitySchemes", {})
        if not requirements:
            return []
        header = request.headers.get("Authorization", "")
        scheme_name, _, credential = header.partition(" ")
        for requirement in requirements:
            for name in requirement:
                scheme = schemes.get(name, {})
                if scheme.get("type") != "http":
                    continue
                expected = str(scheme.get("scheme", "")).lower()
                if scheme_name.lower() != expected or not credential.strip():
                    continue
                if expected == "basic":
                    try:
                        user, sep, _ = base64.b64decode(credential, validate=True).decode().partition(":")
                    except (binascii.Error, UnicodeDecodeError):
                        continue
                    if not (user and sep):
                        continue
                return []
        return [f"{where}: Authorization does not use a documented scheme ({sorted(schemes)})"]

    def _body_problems(self, op: Operation, request: httpx.Request, where: str) -> list[str]:
        d = op.description
        body = request.content
        request_body = d.resolve(op.spec.get("requestBody")) if op.spec.get("requestBody") else None
        if request_body is None:
            return [f"{where}: sends a body the operation does not take"] if body else []
        if not body:
            return [f"{where}: body required"] if request_body.get("required") else []
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        content = request_body.get("content", {})
        if content_type not in content:
            return [f"{where}: content type {content_type!r} not one of {sorted(content)}"]
        schema = d.resolve(content[content_type].get("schema", {}))
        if content_type == "application/json":
            try:
                instance = json.loads(body)
            except ValueError:
                return [f"{where}: body is not JSON"]
        elif content_type == "application/x-www-form-urlencoded":
            instance, problems = _decode_form(d, schema, body.decode())
            if problems:
                return [f"{where}: {p}" for p in problems]
        else:
            return []
        return d.schema_problems(schema, instance, f"{where} body")

    # --- responses ----------------------------------------------------------------------------------
    def response_problems(self, response: httpx.Response) -> list[str]:
        request = response.request
        op = self.operation(request.method, request.url.path)
        if op is None:
            return [
                f"{request.method} {request.url.path}: no such operation in the {self.provider} description"
            ]
        d, status = op.description, response.status_code
        where = f"{op.name} {status} response"
        responses = op.spec.get("responses", {})
        spec = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
        if spec is None:
            if status < 400:
                return [f"{where}: status {status} not documented ({sorted(responses)})"]
            return self._undocumented_error(d, response, where)
        spec = d.resolve(spec)
        content = spec.get("content") or {}
        if not content:
            return (
                [f"{where}: documented without a body, got {len(response.content)} bytes"]
                if (response.content)
                else []
            )
        content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type not in content:
            return [f"{where}: content type {content_type!r} not one of {sorted(content)}"]
        schema = d.resolve(content[content_type].get("schema", {}))
        try:
            body = response.json()
        except ValueError:
            return [f"{where}: body is not JSON"]
        problems = d.schema_problems(schema, body, f"{where} body")
        if status < 300 and isinstance(body, dict):
            missing = sorted(set(schema.get("properties", {})) - set(body))
            if missing:
                problems.append(f"{where}: documented properties missing: {missing}")
        return problems

    def _undocumented_error(self, d: Description, response: httpx.Response, where: str) -> list[str]:
        if self.error_schema is None:
            return []  # the caller checks this provider's error body itself
        try:
            body = response.json()
        except ValueError:
            return [f"{where}: error body is not JSON"]
        return d.schema_problems({"$ref": self.error_schema}, body, f"{where} (general error) body")


def _coerce(d: Description, schema: dict[str, Any], values: list[str]) -> Any:
    schema = d.resolve(schema)
    if schema.get("type") == "array":
        items = d.resolve(schema.get("items", {}))
        return [_scalar(items, v) for v in values]
    return _scalar(schema, values[0]) if len(values) == 1 else values


def _scalar(schema: dict[str, Any], value: str) -> Any:
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value  # left a string: the schema check reports the wrong type
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    return value


def _decode_form(d: Description, schema: dict[str, Any], text: str) -> tuple[dict[str, Any], list[str]]:
    """A form body as the schema's own types; a repeated scalar parameter is a problem."""
    pairs = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
    properties = schema.get("properties", {})
    decoded: dict[str, Any] = {}
    problems = []
    for name, values in pairs.items():
        prop = d.resolve(properties.get(name, {}))
        if prop.get("type") != "array" and len(values) > 1:
            problems.append(f"form parameter {name!r} repeated")
        decoded[name] = _coerce(d, prop, values)
    return decoded, problems
