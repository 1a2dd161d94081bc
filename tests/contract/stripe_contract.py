"""Requests and objects checked against Stripe's own descriptions.

Stripe's full OpenAPI file is too large to vendor; the official ``stripe`` package (a dev dependency,
pinned to the release for the API version Tidings sends, ``Stripe-Version: 2024-06-20``) is generated
from it: ``PaymentIntent.CreateParams`` and the other ``*Params`` TypedDicts name every request
parameter with its type and enum values, and the resource classes (``PaymentIntent``, ``Refund``,
``Charge``, ``Event``, ``ErrorObject``) annotate every field of the objects Stripe returns. Stripe's own
example objects (``vendor/stripe_fixtures3.subset.json``) say which fields Stripe always includes.
"""

from __future__ import annotations

import json
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, ForwardRef, Literal, NotRequired, Required, Union, get_args, get_origin
from urllib.parse import parse_qsl

import httpx
import stripe
from stripe._error_object import ErrorObject
from stripe._request_options import RequestOptions
from stripe._stripe_object import StripeObject

VENDOR = Path(__file__).parent / "vendor"
FIXTURES: dict[str, dict[str, Any]] = json.loads((VENDOR / "stripe_fixtures3.subset.json").read_text())[
    "resources"
]
API_VERSION = stripe.api_version
_OPTIONS = set(RequestOptions.__annotations__)
#: Error fields Stripe documents (https://docs.stripe.com/api/errors) that the package's ErrorObject omits.
ERROR_EXTRA_FIELDS = {"request_log_url", "payment_method_type"}


class ListOf:
    """A Stripe list object (``{"object": "list", "data": [...], "has_more", "url"}``) of ``cls``."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.__name__ = f"list of {cls.__name__}"


#: (method, path pattern) -> (operation, parameters TypedDict, object class answered)
ROUTES: list[tuple[str, re.Pattern[str], str, Any, type]] = [
    ("POST", re.compile(r"/v1/payment_intents"), "payment_intents.create", stripe.PaymentIntent.CreateParams,
     stripe.PaymentIntent),
    ("GET", re.compile(r"/v1/payment_intents"), "payment_intents.list", stripe.PaymentIntent.ListParams,
     ListOf(stripe.PaymentIntent)),
    ("GET", re.compile(r"/v1/payment_intents/(pi_\w+)"), "payment_intents.retrieve",
     stripe.PaymentIntent.RetrieveParams, stripe.PaymentIntent),
    ("POST", re.compile(r"/v1/payment_intents/(pi_\w+)/confirm"), "payment_intents.confirm",
     stripe.PaymentIntent.ConfirmParams, stripe.PaymentIntent),
    ("POST", re.compile(r"/v1/payment_intents/(pi_\w+)/cancel"), "payment_intents.cancel",
     stripe.PaymentIntent.CancelParams, stripe.PaymentIntent),
    ("POST", re.compile(r"/v1/refunds"), "refunds.create", stripe.Refund.CreateParams, stripe.Refund),
    ("GET", re.compile(r"/v1/refunds/(re_\w+)"), "refunds.retrieve", stripe.Refund.RetrieveParams,
     stripe.Refund),
    ("GET", re.compile(r"/v1/charges/(ch_\w+)"), "charges.retrieve", stripe.Charge.RetrieveParams,
     stripe.Charge),
    ("GET", re.compile(r"/v1/events"), "events.list", stripe.Event.ListParams, ListOf(stripe.Event)),
    ("GET", re.compile(r"/v1/events/(evt_\w+)"), "events.retrieve", stripe.Event.RetrieveParams,
     stripe.Event),
]  # fmt: skip
OBJECT_CLASSES: dict[str, type] = {
    "payment_intent": stripe.PaymentIntent,
    "refund": stripe.Refund,
    "charge": stripe.Charge,
    "payment_method": stripe.PaymentMethod,
    "event": stripe.Event,
    "balance_transaction": stripe.BalanceTransaction,
}


def route(method: str, path: str) -> tuple[str, Any, type] | None:
    for route_method, pattern, name, params, cls in ROUTES:
        if method == route_method and pattern.fullmatch(path):
            return name, params, cls
    return None


# --- annotations ----------------------------------------------------------------------------------


def _namespace(owner: Any) -> dict[str, Any]:
    module = sys.modules[owner.__module__]
    names = {name: getattr(typing, name) for name in typing.__all__}
    names.update({name: getattr(stripe, name) for name in dir(stripe) if not name.startswith("_")})
    names.update(vars(module))
    return names


def _resolve(annotation: Any, owner: Any) -> Any:
    if isinstance(annotation, str):
        annotation = ForwardRef(annotation)
    if isinstance(annotation, ForwardRef):
        try:
            annotation = eval(annotation.__forward_arg__, _namespace(owner))
        except NameError:
            return Any  # a name the package imports only for type checkers: not checked
    return annotation


def _strip(annotation: Any, owner: Any) -> tuple[Any, bool]:
    """(annotation without NotRequired/Required, whether the key may be absent)."""
    annotation = _resolve(annotation, owner)
    if get_origin(annotation) in (NotRequired, Required):
        return _resolve(get_args(annotation)[0], owner), get_origin(annotation) is NotRequired
    return annotation, False


def fields(cls: Any) -> dict[str, tuple[Any, Any]]:
    """Every annotated field of a resource class or params TypedDict (request options excluded):
    name -> (annotation, the class that declares it)."""
    found: dict[str, tuple[Any, Any]] = {}
    for klass in reversed(cls.__mro__):
        for name, annotation in vars(klass).get("__annotations__", {}).items():
            # OBJECT_NAME and the like are class constants, _name the SDK's own state: not fields
            if not name.isupper() and not name.startswith("_"):
                found[name] = (annotation, klass)
    if not issubclass(cls, StripeObject):  # a params TypedDict: the SDK's request options are not params
        found = {k: v for k, v in found.items() if k not in _OPTIONS}
    return found


def _is_optional(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


# --- objects (what the sandbox answers) ------------------------------------------------------------


def object_problems(value: Any, cls: type, where: str, *, complete: bool = True) -> list[str]:
    """``value`` (a decoded JSON object) against a Stripe resource class: no field the class does not
    name, every value of the annotated type and enum, and (``complete``) every field Stripe's example
    object shows and the class marks as always present."""
    if not isinstance(value, dict):
        return [f"{where}: expected an object, got {type(value).__name__}"]
    known = fields(cls)
    extra = ERROR_EXTRA_FIELDS if cls is ErrorObject else set()
    problems = [
        f"{where}: field {k!r} is not a {cls.__name__} field"
        for k in value
        if k not in known and k not in extra
    ]
    for name, (annotation, owner) in known.items():
        if name not in value:
            continue
        problems += value_problems(value[name], _resolve(annotation, owner), owner, f"{where}.{name}")
    if complete:
        fixture = FIXTURES.get(value.get("object", ""), {})
        for name in fixture:
            annotation = known.get(name)
            if annotation is None or name in value:
                continue
            if not _is_optional(_resolve(*annotation)):
                problems.append(f"{where}: field {name!r} missing (Stripe always returns it)")
        prefix = str(fixture.get("id", "")).partition("_")[0]
        if prefix and not str(value.get("id", "")).startswith(prefix + "_"):
            problems.append(f"{where}.id: {value.get('id')!r} does not start with {prefix}_")
    return problems


def value_problems(value: Any, annotation: Any, owner: Any, where: str) -> list[str]:
    annotation = _resolve(annotation, owner)
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is Any:
        return []
    if origin in (Union, types.UnionType):
        if value is None:
            return [] if type(None) in args else [f"{where}: null not allowed"]
        attempts = [value_problems(value, a, owner, where) for a in args if a is not type(None)]
        return [] if any(not a for a in attempts) else min(attempts, key=len)
    if value is None:
        return [f"{where}: null not allowed"]
    if origin is Literal:
        return [] if value in args else [f"{where}: {value!r} not one of {list(args)}"]
    if origin in (list, typing.List):  # noqa: UP006
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        return [
            p for i, item in enumerate(value) for p in value_problems(item, args[0], owner, f"{where}[{i}]")
        ]
    if origin in (dict, typing.Dict):  # noqa: UP006
        if not isinstance(value, dict):
            return [f"{where}: expected an object"]
        return [p for k, item in value.items() for p in value_problems(item, args[1], owner, f"{where}.{k}")]
    if annotation is bool:
        return [] if isinstance(value, bool) else [f"{where}: expected a boolean, got {value!r}"]
    if annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected an integer, got {value!r}"]
    if annotation is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected a number, got {value!r}"]
    if annotation is str:
        return [] if isinstance(value, str) else [f"{where}: expected a string, got {value!r}"]
    if isinstance(annotation, type) and issubclass(annotation, StripeObject):
        if annotation is StripeObject:
            return [] if isinstance(value, dict) else [f"{where}: expected an object"]
        return object_problems(value, annotation, where, complete=False)
    return []


def error_problems(body: Any, status: int) -> list[str]:
    """Stripe's error answer: ``{"error": <ErrorObject>}`` with a documented type for the status."""
    if not isinstance(body, dict) or set(body) != {"error"}:
        keys = sorted(body) if isinstance(body, dict) else body
        return [f"error body must be exactly {{'error': ...}}, got {keys!r}"]
    error = body["error"]
    problems = object_problems(error, ErrorObject, "error", complete=False)
    kind = error.get("type") if isinstance(error, dict) else None
    documented = {"api_error", "card_error", "idempotency_error", "invalid_request_error"}
    if kind not in documented:
        problems.append(f"error.type: {kind!r} not one of {sorted(documented)}")
    if status == 402 and kind != "card_error":
        problems.append("a 402 is a card_error at Stripe")
    for name, cls in (("payment_intent", stripe.PaymentIntent), ("payment_method", stripe.PaymentMethod)):
        if isinstance(error, dict) and isinstance(error.get(name), dict):
            problems += object_problems(error[name], cls, f"error.{name}")
    return problems


def response_problems(response: httpx.Response) -> list[str]:
    request = response.request
    found = route(request.method, request.url.path)
    if found is None:
        return [f"{request.method} {request.url.path}: not a Stripe operation Tidings uses"]
    name, _params, cls = found
    content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip()
    if content_type != "application/json":
        return [f"{name} {response.status_code}: content type {content_type!r}, Stripe answers JSON"]
    problems = []
    if not response.headers.get("Request-Id", "").startswith("req_"):
        problems.append(f"{name} {response.status_code}: no Request-Id header")
    body = response.json()
    if response.status_code >= 400:
        return problems + [
            f"{name} {response.status_code}: {p}" for p in error_problems(body, response.status_code)
        ]
    if isinstance(cls, ListOf):
        return problems + [f"{name}: {p}" for p in list_problems(body, cls.cls)]
    return problems + [f"{name}: {p}" for p in object_problems(body, cls, cls.__name__)]


def list_problems(body: Any, cls: type) -> list[str]:
    """A list object as ``stripe.ListObject`` annotates it, each item a complete ``cls`` object."""
    if not isinstance(body, dict):
        return ["a list answer is an object"]
    known = {"object", *fields(stripe.ListObject)}
    problems = [f"list: field {k!r} is not a list object field" for k in body if k not in known]
    problems += [f"list: field {k!r} missing" for k in sorted(known - set(body))]
    if body.get("object") != "list":
        problems.append("list: object must be 'list'")
    if not isinstance(body.get("has_more"), bool):
        problems.append("list: has_more must be a boolean")
    for i, item in enumerate(body.get("data") or []):
        problems += object_problems(item, cls, f"data[{i}]")
    return problems


# --- requests (what the client sends) --------------------------------------------------------------

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def decode_form(text: str) -> tuple[dict[str, Any], list[str]]:
    """Stripe's bracket notation to nested dicts (``a[b][0]=x`` -> ``{"a": {"b": {"0": "x"}}}``)."""
    decoded: dict[str, Any] = {}
    problems = []
    for key, value in parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)):
        match = _KEY.match(key)
        if match is None:
            problems.append(f"parameter name {key!r} is not bracket notation")
            continue
        parts = [match[1], *re.findall(r"\[([^\[\]]*)\]", match[2])]
        node = decoded
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                problems.append(f"parameter {key!r} is both a value and an object")
                break
            node = child
        else:
            if parts[-1] in node:
                problems.append(f"parameter {key!r} sent twice")
            node[parts[-1]] = value
    return decoded, problems


def param_problems(value: Any, annotation: Any, owner: Any, where: str) -> list[str]:
    """A decoded form value against a params annotation (form values are strings)."""
    annotation = _resolve(annotation, owner)
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is Any:
        return []
    if origin in (Union, types.UnionType):
        attempts = [param_problems(value, a, owner, where) for a in args if a is not type(None)]
        return [] if any(not a for a in attempts) else min(attempts, key=len)
    if origin is Literal:
        return [] if value in args else [f"{where}: {value!r} not one of {list(args)}"]
    if origin in (list, typing.List):  # noqa: UP006
        if not isinstance(value, dict) or sorted(value, key=str) != [str(i) for i in range(len(value))]:
            return [f"{where}: a list is sent as {where}[0], {where}[1], ..."]
        return [
            p
            for i in range(len(value))
            for p in param_problems(value[str(i)], args[0], owner, f"{where}[{i}]")
        ]
    if origin in (dict, typing.Dict):  # noqa: UP006
        if not isinstance(value, dict):
            return [f"{where}: expected {where}[key]=value"]
        return [p for k, item in value.items() for p in param_problems(item, args[1], owner, f"{where}[{k}]")]
    if annotation is bool:
        return (
            []
            if value in ("true", "false")
            else [f"{where}: a boolean is sent as true or false, got {value!r}"]
        )
    if annotation is int:
        ok = isinstance(value, str) and re.fullmatch(r"-?\d+", value)
        return [] if ok else [f"{where}: expected an integer, got {value!r}"]
    if annotation is float:
        ok = isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value)
        return [] if ok else [f"{where}: expected a number, got {value!r}"]
    if annotation is str:
        return [] if isinstance(value, str) else [f"{where}: expected a string"]
    if isinstance(annotation, type) and issubclass(annotation, dict):
        return typed_dict_problems(value, annotation, where)
    return []


def typed_dict_problems(value: Any, params: type, where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: expected an object"]
    known = fields(params)
    problems = [f"{where}: unknown parameter {k!r}" for k in value if k not in known]
    for name, (annotation, owner) in known.items():
        stripped, optional = _strip(annotation, owner)
        if name not in value:
            if not optional:
                problems.append(f"{where}: required parameter {name!r} missing")
            continue
        problems += param_problems(value[name], stripped, owner, f"{where}[{name}]" if where else name)
    return problems


def request_problems(request: httpx.Request) -> list[str]:
    path = request.url.path
    found = route(request.method, path)
    if found is None:
        return [f"{request.method} {path}: not a documented Stripe operation (or not one Tidings uses)"]
    name, params, _cls = found
    problems = []
    authorization = request.headers.get("Authorization", "")
    if not re.fullmatch(r"Bearer sk_(test|live)_\S+", authorization):
        problems.append(f"{name}: Authorization must be 'Bearer sk_...' (Stripe's secret-key auth)")
    version = request.headers.get("Stripe-Version")
    if version != API_VERSION:
        problems.append(f"{name}: Stripe-Version {version!r}, the parameters checked are {API_VERSION}'s")
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (1 <= len(key) <= 255):
        problems.append(f"{name}: Idempotency-Key must be 1-255 characters")
    if request.method == "POST":
        if not key:
            problems.append(f"{name}: a POST without Idempotency-Key could charge twice on a retry")
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip()
        if request.content and content_type != "application/x-www-form-urlencoded":
            problems.append(f"{name}: Stripe takes form-encoded bodies, got {content_type!r}")
        text = request.content.decode()
    else:
        if request.content:
            problems.append(f"{name}: a GET with a body")
        text = request.url.query.decode()
    decoded, form_problems = decode_form(text)
    problems += [f"{name}: {p}" for p in form_problems]
    problems += [f"{name}: {p}" for p in typed_dict_problems(decoded, params, "")]
    return problems
