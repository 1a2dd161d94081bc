"""Stripe PaymentIntents and Refunds over httpx (form-encoded, bracket notation, Idempotency-Key).

The models, the redaction and the HTTP path (httpx) are imported where they are used, so importing the
gateway costs less than importing Stripe's SDK (docs/benchmarks.md, section 2); the factory imports the
HTTP path when it builds the gateway.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from tidings.errors import IdempotencyConflict, InvalidRequest, PaymentDeclined, ProviderError
from tidings.providers._errors import error_for_status, json_body, retry_after_seconds

if TYPE_CHECKING:
    import httpx

    from tidings.providers._http import HttpProvider
    from tidings.providers.models import ChargeRequest, PaymentResult, RefundableCharge, RefundResult

PROVIDER = "stripe"
_ID = re.compile(r"^[A-Za-z0-9_]+$")


def stripe_error(response: httpx.Response) -> ProviderError:
    """Map Stripe's error body, with its ``Stripe-Should-Retry`` answer on the error (the retry policy
    follows it: ``false`` is never retried, ``true`` is, a 409 lock or key in use included)."""
    error = _stripe_error(response)
    hint = (response.headers.get("Stripe-Should-Retry") or "").strip().lower()
    error.should_retry = {"true": True, "false": False}.get(hint)
    return error


def _stripe_error(response: httpx.Response) -> ProviderError:
    """Map Stripe's ``{"error": {"type", "code", "decline_code", "param", "message"}}`` body."""
    from tidings.observability import redact

    body = json_body(response)
    error = body.get("error", {}) if isinstance(body, dict) else {}
    kind = error.get("type")
    code = error.get("code")
    request_id = response.headers.get("Request-Id")
    message = error.get("message") or f"stripe answered {response.status_code}"
    if kind == "card_error" or response.status_code == 402:
        return PaymentDeclined(
            redact(message),
            decline_code=error.get("decline_code") or code,
            provider=PROVIDER,
            status=response.status_code,
            code=code,
            request_id=request_id,
        )
    if kind == "idempotency_error" or code == "idempotency_key_in_use":
        return IdempotencyConflict(
            redact(message),
            provider=PROVIDER,
            status=response.status_code,
            code=code or kind,
            request_id=request_id,
        )
    return error_for_status(
        PROVIDER,
        response.status_code,
        message,
        code=code or kind,
        request_id=request_id,
        field=error.get("param"),
        retry_after=retry_after_seconds(response.headers),
    )


def _checked_id(value: str, field: str) -> str:
    if not _ID.match(value or ""):
        raise InvalidRequest("not a Stripe object id", provider=PROVIDER, field=field, code="invalid_id")
    return value


def _payment_result(body: dict[str, Any], request_id: str | None) -> PaymentResult:
    from tidings.providers.models import PaymentResult

    next_action = body.get("next_action") or {}
    redirect = next_action.get("redirect_to_url") or {}
    return PaymentResult(
        payment_intent_id=body["id"],
        status=body["status"],
        amount=body["amount"],
        currency=body["currency"],
        next_action_url=redirect.get("url"),
        request_id=request_id,
    )


class StripePaymentGateway:
    """``charge`` creates and confirms a PaymentIntent in one request. A card that needs 3-D Secure
    is not an error: the result has status ``requires_action`` and ``next_action_url``."""

    name = PROVIDER

    def __init__(
        self, http: HttpProvider, api_version: str = "2024-06-20", return_url: str | None = None
    ) -> None:
        self.http = http
        self.api_version = api_version
        self.return_url = return_url

    def _headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"Stripe-Version": self.api_version}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def charge(self, request: ChargeRequest) -> PaymentResult:
        form = encode_form(
            {
                "amount": request.amount,
                "currency": request.currency.lower(),
                "payment_method": request.payment_method,
                "payment_method_types": ["card"],
                "confirm": True,
                "description": request.description,
                "receipt_email": request.receipt_email,
                "metadata": request.metadata or None,
                "return_url": self.return_url,
            }
        )
        result = self.http.request(
            "POST",
            "/v1/payment_intents",
            endpoint="payment_intents.create",
            form=form,
            headers=self._headers(request.idempotency_key),
        )
        return _payment_result(result.json(), result.response.headers.get("Request-Id"))

    def retrieve(self, payment_intent_id: str) -> PaymentResult:
        pi = _checked_id(payment_intent_id, "payment_intent_id")
        result = self.http.request(
            "GET", f"/v1/payment_intents/{pi}", endpoint="payment_intents.retrieve", headers=self._headers()
        )
        return _payment_result(result.json(), result.response.headers.get("Request-Id"))

    def refundable(self, payment_intent_id: str) -> RefundableCharge:
        """The PaymentIntent and its latest charge as Stripe holds them now: the amount taken and the
        amount already refunded (by anyone: the saga, the shop, the Dashboard)."""
        intent = self.http.request(
            "GET",
            f"/v1/payment_intents/{_checked_id(payment_intent_id, 'payment_intent_id')}",
            endpoint="payment_intents.retrieve",
            headers=self._headers(),
        ).json()
        charge_id = intent.get("latest_charge")
        if isinstance(charge_id, dict):  # expanded
            charge_id = charge_id.get("id")
        refunded = 0
        if intent["status"] == "succeeded" and charge_id:
            charge = self.http.request(
                "GET",
                f"/v1/charges/{_checked_id(str(charge_id), 'charge')}",
                endpoint="charges.retrieve",
                headers=self._headers(),
            ).json()
            refunded = int(charge.get("amount_refunded") or 0)
        from tidings.providers.models import RefundableCharge

        return RefundableCharge(
            payment_intent_id=intent["id"],
            status=intent["status"],
            amount=intent.get("amount_received") or intent["amount"],
            currency=intent["currency"],
            amount_refunded=refunded,
            charge_id=charge_id,
        )

    def find_by_metadata(
        self, key: str, value: str, created_from: int, created_to: int | None = None
    ) -> PaymentResult | None:
        """The PaymentIntent created in a time window whose ``metadata[key]`` is ``value``, if any.

        Listed by creation time and filtered here rather than found with Stripe's search API: search is
        eventually consistent (an intent created a minute ago may not be found), and "not found" must
        be certain before anyone decides that a customer was not charged.
        """
        created = {"created[gte]": str(created_from)}
        if created_to is not None:
            created["created[lte]"] = str(created_to)
        starting_after: str | None = None
        while True:
            query = {**created, "limit": "100"}
            if starting_after:
                query["starting_after"] = starting_after
            result = self.http.request(
                "GET",
                "/v1/payment_intents?" + urlencode(query),
                endpoint="payment_intents.list",
                headers=self._headers(),
            )
            page = result.json()
            for intent in page.get("data", []):
                if (intent.get("metadata") or {}).get(key) == value:
                    return _payment_result(intent, result.response.headers.get("Request-Id"))
            if not page.get("has_more") or not page.get("data"):
                return None
            starting_after = page["data"][-1]["id"]

    def undelivered_events(self, created_from: int, created_to: int) -> Iterator[dict[str, Any]]:
        """Events of a time window that Stripe has not delivered to every webhook endpoint
        (``GET /v1/events?delivery_success=false``: pending, or failed every attempt), oldest page last."""
        starting_after: str | None = None
        while True:
            query = {
                "delivery_success": "false",
                "created[gte]": str(created_from),
                "created[lte]": str(created_to),
                "limit": "100",
            }
            if starting_after:
                query["starting_after"] = starting_after
            page = self.http.request(
                "GET", "/v1/events?" + urlencode(query), endpoint="events.list", headers=self._headers()
            ).json()
            yield from page.get("data", [])
            if not page.get("has_more") or not page.get("data"):
                return
            starting_after = page["data"][-1]["id"]

    def cancel(self, payment_intent_id: str, idempotency_key: str) -> PaymentResult:
        pi = _checked_id(payment_intent_id, "payment_intent_id")
        result = self.http.request(
            "POST",
            f"/v1/payment_intents/{pi}/cancel",
            endpoint="payment_intents.cancel",
            form={},
            headers=self._headers(idempotency_key),
        )
        return _payment_result(result.json(), result.response.headers.get("Request-Id"))

    def refund(self, payment_intent_id: str, idempotency_key: str, amount: int | None = None) -> RefundResult:
        pi = _checked_id(payment_intent_id, "payment_intent_id")
        result = self.http.request(
            "POST",
            "/v1/refunds",
            endpoint="refunds.create",
            form=encode_form({"payment_intent": pi, "amount": amount}),
            headers=self._headers(idempotency_key),
        )
        body = result.json()
        from tidings.providers.models import RefundResult

        return RefundResult(
            refund_id=body["id"],
            status=body["status"],
            payment_intent_id=body.get("payment_intent") or pi,
            amount=body["amount"],
        )


def stripe_auth(credentials: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials.api_key}"}


def encode_form(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Stripe's bracket notation: ``{"metadata": {"a": "1"}, "types": ["card"]}`` ->
    ``{"metadata[a]": "1", "types[0]": "card"}``; booleans as ``true``/``false``; None dropped."""
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            flat.update(encode_form(value, name))
        elif isinstance(value, list | tuple):
            flat.update(encode_form({str(i): item for i, item in enumerate(value)}, name))
        elif isinstance(value, bool):
            flat[name] = "true" if value else "false"
        else:
            flat[name] = str(value)
    return flat
