"""Every class of malformed input, over real HTTP against the real template with a valid write token.

Each is refused with its 4xx and a machine-readable body that repeats none of the request's values, no
5xx; nothing is started and the Stripe sandbox records no request (``nothing_happens``). The local
system is the package's (conftest.py), shared with the JWT attacks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest
from support.e2e import order_body

from tidings_local.sandboxes import credentials
from tidings_local.stack.system import LocalSystem

pytestmark = pytest.mark.integration


def _write(system: LocalSystem, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {system.token(scope='notifications/write')}", **extra}


def _with(path: str, value: Any) -> dict[str, Any]:
    body = order_body()
    *parents, last = path.split(".")
    target = body
    for name in parents:
        target = target[name]
    target[last] = value
    return body


#: (field, value, the error type the 422 names): coercion, Unicode digits, Stripe's rules, unsafe text.
REFUSED = {
    "amount true": ("payment.amount", True, "int_type"),
    "amount as a string": ("payment.amount", "1000", "int_type"),
    "amount as a float": ("payment.amount", 2599.0, "int_type"),
    "new_charge as a string": ("new_charge", "true", "bool_type"),
    "Arabic-Indic digits in the phone": ("customer.phone", "+44770090\u0661\u0662\u0663", "value_error"),
    "a currency Stripe does not charge in": ("payment.currency", "xau", "currency_not_supported"),
    "a line break in the name": ("customer.name", "Ada\r\nBcc: all@example.com", "unsafe_character"),
    "a bidi override in the name": ("customer.name", "Ada \u202eecalevoL", "unsafe_character"),
    "NUL in the receipt": ("receipt.text", "Thank you\x00", "unsafe_character"),
    "an escape sequence in the SMS": ("sms.text", "Paid \x1b[2J", "unsafe_character"),
    "an isolate in the subject": ("receipt.subject", "Receipt \u2067", "unsafe_character"),
    "receipt HTML": ("receipt.html", "<img src=https://tracker.example/p.gif>", "extra_forbidden"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_malformed_fields_are_422_naming_the_field_and_nothing_happens(
    http: httpx.Client, system: LocalSystem, nothing_happens: None, case: str
) -> None:
    path, value, error_type = REFUSED[case]
    response = http.post("/notifications", json=_with(path, value), headers=_write(system))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    assert [(e["loc"][1:], e["type"]) for e in body["errors"]] == [(path.split("."), error_type)]
    assert "Ada" not in response.text  # no value comes back, the customer's name least of all


def test_an_amount_below_stripes_minimum_is_422(
    http: httpx.Client, system: LocalSystem, nothing_happens: None
) -> None:
    body = _with("payment", {"amount": 29, "currency": "gbp", "payment_method": "pm_card_visa"})
    response = http.post("/notifications", json=body, headers=_write(system))
    assert response.status_code == 422
    assert [e["type"] for e in response.json()["errors"]] == ["amount_below_minimum"]


@pytest.mark.parametrize("route", ["/notifications", "/notifications/bulk"])
def test_a_deeply_nested_body_is_400(
    http: httpx.Client, system: LocalSystem, nothing_happens: None, route: str
) -> None:
    deep = '{"items": ' + "[" * 50_000 + "]" * 50_000 + "}"
    response = http.post(route, content=deep, headers=_write(system, **{"Content-Type": "application/json"}))
    assert (response.status_code, response.json()["code"]) == (400, "body_too_deep")


def test_an_oversized_body_is_413(http: httpx.Client, system: LocalSystem, nothing_happens: None) -> None:
    body = _with("receipt.text", "x" * 300_000)
    response = http.post("/notifications", json=body, headers=_write(system))
    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")


def test_a_form_body_is_415_and_not_echoed(
    http: httpx.Client, system: LocalSystem, nothing_happens: None
) -> None:
    form = {"body": json.dumps(order_body())}
    response = http.post("/notifications", data=form, headers=_write(system))
    assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type")
    assert "ada@example.com" not in response.text


def test_a_bulk_key_reused_with_other_items_is_422(
    http: httpx.Client, system: LocalSystem, nothing_happens: None
) -> None:
    # Every item invalid, so nothing is accepted (or charged) by either request
    headers = _write(system, **{"Idempotency-Key": f"bulk-reuse-{time.time_ns()}"})
    first = http.post("/notifications/bulk", json={"items": [_with("payment.amount", 1)]}, headers=headers)
    assert (first.status_code, first.json()["rejected"]) == (422, 1)
    again = http.post("/notifications/bulk", json={"items": [_with("payment.amount", 1)]}, headers=headers)
    assert again.status_code == 422
    assert again.json()["code"] == "idempotency_key_reused"


def _signed_stripe(body: bytes) -> dict[str, str]:
    t = int(time.time())
    secret = credentials.STRIPE_WEBHOOK_SECRET.encode()
    v1 = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "Stripe-Signature": f"t={t},v1={v1}"}


@pytest.mark.parametrize(
    "body",
    [b"[]", b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": null}', b"[" * 3000 + b"]" * 3000],
    ids=["an array", "data null", "nested 3,000 deep"],
)
def test_a_correctly_signed_webhook_with_a_malformed_payload_is_400(
    http: httpx.Client, nothing_happens: None, body: bytes
) -> None:
    response = http.post("/webhooks/stripe", content=body, headers=_signed_stripe(body))
    assert (response.status_code, response.json()) == (400, {"message": "malformed payload"})
