"""Stripe's PaymentIntents and Refunds API (the subset Tidings uses), with Stripe's test cards.

Behaviour follows Stripe's documentation: form-encoded requests with bracket notation, Bearer or Basic
auth with the secret key, ``Request-Id`` on every response, 402 ``card_error`` bodies for declines,
``Idempotency-Key`` replay / mismatch / in-flight lock, and signed ``Stripe-Signature`` webhooks.

What an operator's set-up uses: ``GET /v1/balance`` (the read-only call that checks a key; ``livemode``
tells a test key from a live one) and webhook endpoints (``POST /v1/webhook_endpoints``, list, retrieve,
update, delete). An endpoint's ``secret`` is answered on creation only, as at Stripe. Once an endpoint is
registered through the API, events go to every enabled endpoint whose ``enabled_events`` hold their type
(or ``*``), each signed with that endpoint's secret; before that, to the sandbox's configured webhook URL
with its configured secret (the local system's ready-made registration).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tidings_local.sandboxes import credentials
from tidings_local.sandboxes.base import Provider, Request, Response, random_alnum
from tidings_local.sandboxes.forms import FormError, decode_nested
from tidings_local.sandboxes.ratelimit import Decision
from tidings_local.sandboxes.webhooks import stripe_signature_header

API_VERSION = "2024-06-20"
DOCS = "https://stripe.com/docs/error-codes/"
MIN_AMOUNT = 50
MAX_AMOUNT = 99_999_999
CURRENCIES = frozenset(
    {"usd", "eur", "gbp", "aud", "cad", "chf", "dkk", "nok", "sek", "pln", "czk", "huf", "ron", "bgn"}
    | {"nzd", "sgd", "hkd", "jpy", "mxn", "brl", "inr"}
)
ZERO_DECIMAL = frozenset({"jpy"})
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "aud": "$", "cad": "$", "nzd": "$", "sgd": "$"}
CANCELLABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

NO_KEY_MESSAGE = (
    "You did not provide an API key. You need to provide your API key in the Authorization header, "
    "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#"
    "authentication for details, or we can help at https://support.stripe.com/."
)
AUTH_FAILURE_MESSAGE = (
    "The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new "
    "PaymentMethod to attempt to fulfill this PaymentIntent again."
)


@dataclass(frozen=True)
class TestCard:
    number: str
    brand: str
    #: "succeeded", "decline" or "authenticate" (3-D Secure challenge)
    outcome: str = "succeeded"
    code: str | None = None
    decline_code: str | None = None
    message: str | None = None
    param: str | None = None
    funding: str = "credit"

    @property
    def last4(self) -> str:
        return self.number[-4:]


def _declined(number: str, decline_code: str, message: str = "Your card was declined.") -> TestCard:
    return TestCard(number, "visa", "decline", "card_declined", decline_code, message)


_VISA = TestCard("4242424242424242", "visa")
_DECLINED = _declined("4000000000000002", "generic_decline")
_INSUFFICIENT = _declined("4000000000009995", "insufficient_funds", "Your card has insufficient funds.")
_LOST = _declined("4000000000009987", "lost_card")
_STOLEN = _declined("4000000000009979", "stolen_card")
_FRAUD = _declined("4100000000000019", "fraudulent")
_EXPIRED = TestCard(
    "4000000000000069",
    "visa",
    "decline",
    "expired_card",
    "expired_card",
    "Your card has expired.",
    "exp_month",
)
_CVC = TestCard(
    "4000000000000127",
    "visa",
    "decline",
    "incorrect_cvc",
    "incorrect_cvc",
    "Your card's security code is incorrect.",
    "cvc",
)
_PROCESSING = TestCard(
    "4000000000000119",
    "visa",
    "decline",
    "processing_error",
    "processing_error",
    "An error occurred while processing your card. Try again in a little bit.",
)
_3DS2 = TestCard("4000000000003220", "visa", "authenticate")
_3DS = TestCard("4000000000003063", "visa", "authenticate")
_AUTH_REQUIRED = TestCard("4000002760003184", "visa", "authenticate")

#: Stripe's test PaymentMethod ids -> the card each stands for.
TEST_PAYMENT_METHODS: dict[str, TestCard] = {
    "pm_card_visa": _VISA,
    "pm_card_visa_debit": TestCard("4000056655665556", "visa", funding="debit"),
    "pm_card_mastercard": TestCard("5555555555554444", "mastercard"),
    "pm_card_amex": TestCard("378282246310005", "amex"),
    "pm_card_threeDSecureOptional": TestCard("4000000000003055", "visa"),
    "pm_card_chargeDeclined": _DECLINED,
    "pm_card_visa_chargeDeclined": _DECLINED,
    "pm_card_chargeDeclinedInsufficientFunds": _INSUFFICIENT,
    "pm_card_visa_chargeDeclinedInsufficientFunds": _INSUFFICIENT,
    "pm_card_chargeDeclinedLostCard": _LOST,
    "pm_card_visa_chargeDeclinedLostCard": _LOST,
    "pm_card_chargeDeclinedStolenCard": _STOLEN,
    "pm_card_visa_chargeDeclinedStolenCard": _STOLEN,
    "pm_card_radarBlock": _FRAUD,
    "pm_card_chargeDeclinedFraudulent": _FRAUD,
    "pm_card_chargeDeclinedExpiredCard": _EXPIRED,
    "pm_card_visa_chargeDeclinedExpiredCard": _EXPIRED,
    "pm_card_chargeDeclinedIncorrectCvc": _CVC,
    "pm_card_visa_chargeDeclinedIncorrectCvc": _CVC,
    "pm_card_chargeDeclinedProcessingError": _PROCESSING,
    "pm_card_visa_chargeDeclinedProcessingError": _PROCESSING,
    "pm_card_threeDSecure2Required": _3DS2,
    "pm_card_threeDSecureRequired": _3DS,
    "pm_card_authenticationRequired": _AUTH_REQUIRED,
}
#: Test card numbers (``payment_method_data[card][number]``) -> card.
TEST_CARD_NUMBERS: dict[str, TestCard] = {card.number: card for card in TEST_PAYMENT_METHODS.values()}
#: Test tokens (``payment_method_data[card][token]``) -> card.
TEST_TOKENS: dict[str, TestCard] = {
    "tok_" + name.removeprefix("pm_card_"): card for name, card in TEST_PAYMENT_METHODS.items()
}

LIST_PARAMS = frozenset({"created", "customer", "ending_before", "expand", "limit", "starting_after"})
EVENT_LIST_PARAMS = frozenset(
    {"created", "delivery_success", "ending_before", "expand", "limit", "starting_after", "type", "types"}
)
CREATE_PARAMS = frozenset(
    {
        "amount",
        "currency",
        "payment_method",
        "payment_method_data",
        "payment_method_types",
        "automatic_payment_methods",
        "confirm",
        "confirmation_method",
        "capture_method",
        "customer",
        "description",
        "metadata",
        "receipt_email",
        "return_url",
        "off_session",
        "error_on_requires_action",
        "setup_future_usage",
        "statement_descriptor",
        "statement_descriptor_suffix",
        "shipping",
        "use_stripe_sdk",
        "expand",
        "payment_method_options",
        "mandate_data",
    }
)
CONFIRM_PARAMS = frozenset(
    {
        "payment_method",
        "payment_method_data",
        "return_url",
        "receipt_email",
        "off_session",
        "error_on_requires_action",
        "setup_future_usage",
        "use_stripe_sdk",
        "expand",
        "payment_method_options",
        "mandate_data",
        "shipping",
    }
)
CANCEL_PARAMS = frozenset({"cancellation_reason", "expand"})
WEBHOOK_CREATE_PARAMS = frozenset(
    {"url", "enabled_events", "description", "metadata", "api_version", "connect", "expand"}
)
WEBHOOK_UPDATE_PARAMS = frozenset({"url", "enabled_events", "description", "metadata", "disabled", "expand"})
_EVENT_TYPE = re.compile(r"^(\*|[a-z_]+(\.[a-z_]+)+)$")
REFUND_PARAMS = frozenset(
    {
        "payment_intent",
        "charge",
        "amount",
        "reason",
        "metadata",
        "expand",
        "refund_application_fee",
        "reverse_transfer",
        "instructions_email",
    }
)


class StripeError(Exception):
    """An API error Stripe answers with ``{"error": {...}}``."""

    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error", **fields: Any):
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "type": type_}
        code = fields.get("code")
        if code:
            self.body["doc_url"] = DOCS + code.replace("_", "-")
        self.body.update({k: v for k, v in fields.items() if v is not None})


def _missing(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def _unknown(params: dict[str, Any], allowed: frozenset[str]) -> None:
    for name in params:
        if name not in allowed:
            raise StripeError(
                400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name
            )


def _integer(params: dict[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise StripeError(400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=name)
    return int(value)


def _boolean(params: dict[str, Any], name: str) -> bool:
    value = params.get(name)
    if value is None:
        return False
    if value not in ("true", "false"):
        raise StripeError(400, f"Invalid boolean: {value}", code="parameter_invalid_boolean", param=name)
    return value == "true"


def _metadata(params: dict[str, Any], name: str = "metadata") -> dict[str, str]:
    value = params.get(name)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise StripeError(400, "Invalid object", code="parameter_invalid_object", param=name)
    for key, item in value.items():
        if not isinstance(item, str):
            raise StripeError(400, "Invalid string", code="parameter_invalid_string", param=f"{name}[{key}]")
        if len(key) > 40:
            raise StripeError(
                400,
                "Metadata keys can have up to 40 characters.",
                code="parameter_invalid_string",
                param=name,
            )
        if len(item) > 500:
            raise StripeError(
                400,
                f"Metadata values can have up to 500 characters, but you passed in a value that is "
                f"{len(item)} characters. Invalid value: {item[:20]}...",
                code="parameter_invalid_string",
                param=f"{name}[{key}]",
            )
    if len(value) > 50:
        raise StripeError(400, "You can have up to 50 metadata keys.", param=name)
    return {k: v for k, v in value.items() if v != ""}


def _money(amount: int, currency: str) -> str:
    symbol = SYMBOLS.get(currency)
    value = str(amount) if currency in ZERO_DECIMAL else f"{amount / 100:,.2f}"
    return f"{symbol}{value}" if symbol else f"{value} {currency}"


def _now() -> int:
    return int(time.time())


class StripeProvider(Provider):
    name = "stripe"
    server_header = "nginx"

    def reset(self) -> None:
        self.api_keys: set[str] = {credentials.STRIPE_API_KEY}
        self.webhook_secret = credentials.STRIPE_WEBHOOK_SECRET
        self.intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.payment_methods: dict[str, tuple[dict[str, Any], TestCard]] = {}
        #: (api key, idempotency key) -> first request and, once done, its response
        self.idempotency: dict[tuple[str, str], dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        #: Event ids whose webhook the endpoint acknowledged (2xx): the rest are pending or failed.
        self.delivered_events: set[str] = set()
        #: id -> endpoint registered through POST /v1/webhook_endpoints (its secret kept here only).
        self.webhook_endpoints: dict[str, dict[str, Any]] = {}

    def set_credentials(self, values: dict[str, Any]) -> None:
        if "api_key" in values:
            keys = values["api_key"]
            self.api_keys = {keys} if isinstance(keys, str) else set(keys)
        if "webhook_secret" in values:
            self.webhook_secret = str(values["webhook_secret"])

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {
                "payment_intents": copy.deepcopy(list(self.intents.values())),
                "refunds": copy.deepcopy(list(self.refunds.values())),
                "events": [{"id": e["id"], "type": e["type"]} for e in self.events],
                "webhook_endpoints": [_public_endpoint(e) for e in self.webhook_endpoints.values()],
            }

    # --- plumbing -------------------------------------------------------------------------------

    def parse(self, request: Request) -> None:
        if request.method == "GET":
            request.form = decode_nested(request.query)
        elif request.body:
            request.form = decode_nested(request.body)
        else:
            request.form = decode_nested(request.query)

    def finalize(self, request: Request, response: Response, decision: Decision | None) -> None:
        if response.header("Request-Id") is None:
            response.set_header("Request-Id", request.request_id or _request_id())
        response.set_header("Stripe-Version", API_VERSION)
        key = request.header("Idempotency-Key")
        if key and request.method == "POST":
            response.set_header("Idempotency-Key", key)
        # As Stripe: retry a 429, a 5xx or a request whose key is in use (409); never another 4xx.
        if response.status == 429 or response.status >= 500 or response.status == 409:
            response.set_header("Stripe-Should-Retry", "true")
        elif response.status >= 400:
            response.set_header("Stripe-Should-Retry", "false")

    def error_response(self, status: int, retry_after: int | None = None) -> Response:
        headers: list[tuple[str, str]] = []
        if status == 429:
            error = StripeError(
                429,
                "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
                code="rate_limit",
            )
            headers.append(("Retry-After", str(retry_after or 1)))
        elif status >= 500:
            error = StripeError(status, "An unknown error occurred", type_="api_error")
        elif status == 401:
            return self._unauthorized("Invalid API Key provided: sk_test_****")
        elif status == 402:
            error = StripeError(
                402,
                "Your card was declined.",
                type_="card_error",
                code="card_declined",
                decline_code="generic_decline",
            )
        else:
            from http import HTTPStatus

            error = StripeError(status, HTTPStatus(status).phrase)
        if retry_after and status != 429:
            headers.append(("Retry-After", str(retry_after)))
        return Response.json(status, {"error": error.body}, headers)

    def _unauthorized(self, message: str) -> Response:
        return Response.json(
            401,
            {"error": {"message": message, "type": "invalid_request_error"}},
            [("WWW-Authenticate", 'Bearer realm="Stripe"')],
        )

    def _authenticate(self, request: Request) -> Response | str:
        header = request.header("Authorization")
        if not header:
            return self._unauthorized(NO_KEY_MESSAGE)
        scheme, _, credential = header.partition(" ")
        key = credential.strip()
        if scheme.lower() == "basic":
            try:
                key = base64.b64decode(key, validate=True).decode().split(":", 1)[0]
            except ValueError:
                key = ""
        elif scheme.lower() != "bearer":
            key = ""
        if key not in self.api_keys:
            return self._unauthorized(f"Invalid API Key provided: {_mask_key(key)}")
        return key

    def handle(self, request: Request) -> Response:
        request.request_id = _request_id()
        key = self._authenticate(request)
        if isinstance(key, Response):
            return key
        idempotency_key = request.header("Idempotency-Key")
        if request.method == "POST" and idempotency_key:
            return self._idempotent(request, key, idempotency_key)
        self.sandbox.pause(request)
        return self._execute(request)

    def _execute(self, request: Request) -> Response:
        try:
            with self.lock:
                return self.route(request)
        except StripeError as error:
            return self._error(request, error)
        except FormError as error:
            return self._error(request, StripeError(400, str(error), param=error.param))

    def _error(self, request: Request, error: StripeError) -> Response:
        body = dict(error.body)
        if error.status != 401:
            body["request_log_url"] = (
                f"https://dashboard.stripe.com/test/logs/{request.request_id}?t={int(request.received_at)}"
            )
        return Response.json(error.status, {"error": body})

    # --- idempotency (Stripe's semantics) ---------------------------------------------------------

    def _idempotent(self, request: Request, api_key: str, key: str) -> Response:
        scope = (api_key, key)
        fingerprint = json.dumps(request.form, sort_keys=True)
        with self.lock:
            entry = self.idempotency.get(scope)
            if entry is None:
                entry = {"path": request.path, "fingerprint": fingerprint, "response": None}
                entry["request_id"] = request.request_id
                self.idempotency[scope] = entry
                first = True
            else:
                first = False
        if not first:
            return self._replay(request, entry, key, fingerprint)
        response: Response | None = None
        try:
            self.sandbox.pause(request)  # a slow request holds its key, as at Stripe
            response = self._execute(request)
            return response
        finally:
            with self.lock:
                # Stripe keeps a result only once the endpoint started executing: not for validation
                # errors (4xx other than a card decline).
                if response is not None and (
                    response.status < 400 or response.status in (402,) or response.status >= 500
                ):
                    entry["response"] = Response(response.status, response.body, list(response.headers))
                else:
                    self.idempotency.pop(scope, None)

    def _replay(self, request: Request, entry: dict[str, Any], key: str, fingerprint: str) -> Response:
        if entry["path"] != request.path:
            return self._error(
                request,
                StripeError(
                    400,
                    "Keys for idempotent requests can only be used for the same endpoint they were first "
                    f"used for ('{request.path}' vs '{entry['path']}'). Try using a key other than '{key}' "
                    "if you meant to execute a different request.",
                    type_="idempotency_error",
                ),
            )
        if entry["fingerprint"] != fingerprint:
            return self._error(
                request,
                StripeError(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters they were first "
                    f"used with. Try using a key other than '{key}' if you meant to execute a different "
                    "request.",
                    type_="idempotency_error",
                ),
            )
        saved: Response | None = entry["response"]
        if saved is None:
            return self._error(
                request,
                StripeError(
                    409,
                    "There is currently another in-progress request using this Idempotent Key (probably "
                    "due to a timeout). Try again later.",
                    type_="idempotency_error",
                    code="idempotency_key_in_use",
                ),
            )
        headers = [(k, v) for k, v in saved.headers if k.lower() != "request-id"]
        headers += [("Idempotent-Replayed", "true"), ("Original-Request", entry["request_id"])]
        return Response(saved.status, saved.body, headers)

    # --- routes ---------------------------------------------------------------------------------

    def route(self, request: Request) -> Response:
        method, path, params = request.method, request.path, request.form or {}
        if path == "/v1/payment_intents" and method == "POST":
            return self._ok(self._create_intent(request, params))
        if path == "/v1/payment_intents" and method == "GET":
            return self._ok(self._list_intents(params))
        if (match := re.fullmatch(r"/v1/payment_intents/([^/]+)", path)) and method == "GET":
            return self._ok(self._intent(match[1]))
        match = re.fullmatch(r"/v1/payment_intents/([^/]+)/(confirm|cancel)", path)
        if match and method == "POST":
            if match[2] == "confirm":
                return self._ok(self._confirm(request, self._intent(match[1]), params))
            return self._ok(self._cancel(request, self._intent(match[1]), params))
        if path == "/v1/refunds" and method == "POST":
            return self._ok(self._create_refund(request, params))
        if (match := re.fullmatch(r"/v1/refunds/([^/]+)", path)) and method == "GET":
            refund = self.refunds.get(match[1])
            if refund is None:
                raise StripeError(404, f"No such refund: '{match[1]}'", code="resource_missing", param="id")
            return self._ok(refund)
        if path == "/v1/events" and method == "GET":
            return self._ok(self._list_events(params))
        if (match := re.fullmatch(r"/v1/events/([^/]+)", path)) and method == "GET":
            event = next((e for e in self.events if e["id"] == match[1]), None)
            if event is None:
                raise StripeError(404, f"No such event: '{match[1]}'", code="resource_missing", param="id")
            return self._ok(self._event_view(event))
        if path == "/v1/balance" and method == "GET":
            _unknown(params, frozenset({"expand"}))
            return self._ok(self._balance())
        if path == "/v1/webhook_endpoints" and method == "POST":
            return self._ok(self._create_endpoint(params))
        if path == "/v1/webhook_endpoints" and method == "GET":
            return self._ok(self._list_endpoints(params))
        if match := re.fullmatch(r"/v1/webhook_endpoints/([^/]+)", path):
            endpoint = self.webhook_endpoints.get(match[1])
            if endpoint is None:
                raise StripeError(
                    404, f"No such webhook endpoint: '{match[1]}'", code="resource_missing", param="id"
                )
            if method == "GET":
                return self._ok(_public_endpoint(endpoint))
            if method == "POST":
                return self._ok(self._update_endpoint(endpoint, params))
            if method == "DELETE":
                del self.webhook_endpoints[endpoint["id"]]
                return self._ok({"id": endpoint["id"], "object": "webhook_endpoint", "deleted": True})
        if (match := re.fullmatch(r"/v1/charges/([^/]+)", path)) and method == "GET":
            charge = self.charges.get(match[1])
            if charge is None:
                raise StripeError(404, f"No such charge: '{match[1]}'", code="resource_missing", param="id")
            return self._ok(charge)
        raise StripeError(
            404,
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can "
            "help at https://support.stripe.com/.",
        )

    @staticmethod
    def _ok(obj: dict[str, Any], status: int = 200) -> Response:
        return Response.json(status, obj)

    def _intent(self, intent_id: str) -> dict[str, Any]:
        intent = self.intents.get(intent_id)
        if intent is None:
            raise StripeError(
                404, f"No such payment_intent: '{intent_id}'", code="resource_missing", param="intent"
            )
        return intent

    # --- PaymentIntents ---------------------------------------------------------------------------

    def _list_intents(self, params: dict[str, Any]) -> dict[str, Any]:
        """``GET /v1/payment_intents``: newest first, ``created`` bounds, ``limit`` and cursor paging."""
        _unknown(params, LIST_PARAMS)
        limit, created_within = _list_limit(params), _created_filter(params)
        intents = [
            intent
            # newest first, ties in creation order reversed (dicts keep insertion order)
            for intent in sorted(reversed(self.intents.values()), key=lambda i: i["created"], reverse=True)
            if created_within(intent["created"])
            and (not params.get("customer") or intent["customer"] == params["customer"])
        ]
        intents = _after_cursor(intents, params, limit, "payment_intent")
        return {
            "object": "list",
            "data": copy.deepcopy(intents[:limit]),
            "has_more": len(intents) > limit,
            "url": "/v1/payment_intents",
        }

    # --- Events ----------------------------------------------------------------------------------

    def _event_view(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event as ``GET /v1/events`` shows it: ``pending_webhooks`` counts endpoints not yet
        acknowledged."""
        return {**copy.deepcopy(event), "pending_webhooks": 0 if event["id"] in self.delivered_events else 1}

    def _list_events(self, params: dict[str, Any]) -> dict[str, Any]:
        """``GET /v1/events``: newest first; ``created`` bounds, ``type`` / ``types``,
        ``delivery_success`` (false: pending or failed every attempt), ``limit`` and cursor paging."""
        _unknown(params, EVENT_LIST_PARAMS)
        limit, created_within = _list_limit(params), _created_filter(params)
        types = params.get("types")
        wanted = set(types.values() if isinstance(types, dict) else types or [])
        if params.get("type"):
            wanted.add(str(params["type"]))
        delivered: bool | None = None
        if "delivery_success" in params:
            delivered = _boolean(params, "delivery_success")
        events = [
            event
            for event in sorted(reversed(self.events), key=lambda e: e["created"], reverse=True)
            if created_within(event["created"])
            and (not wanted or event["type"] in wanted)
            and (delivered is None or (event["id"] in self.delivered_events) == delivered)
        ]
        events = _after_cursor(events, params, limit, "event")
        return {
            "object": "list",
            "data": [self._event_view(event) for event in events[:limit]],
            "has_more": len(events) > limit,
            "url": "/v1/events",
        }

    def _create_intent(self, request: Request, params: dict[str, Any]) -> dict[str, Any]:
        _unknown(params, CREATE_PARAMS)
        amount = _integer(params, "amount")
        if amount is None:
            raise _missing("amount")
        currency = params.get("currency")
        if not currency:
            raise _missing("currency")
        currency = str(currency).lower()
        if currency not in CURRENCIES:
            raise StripeError(
                400,
                f"Invalid currency: {currency}. Stripe currently supports these currencies: "
                + ", ".join(sorted(CURRENCIES)),
                param="currency",
            )
        minimum = 1 if currency in ZERO_DECIMAL else MIN_AMOUNT
        if amount < minimum:
            raise StripeError(
                400,
                f"Amount must be at least {_money(minimum, currency)} {currency}",
                code="amount_too_small",
                param="amount",
            )
        if amount > MAX_AMOUNT:
            raise StripeError(
                400,
                f"Amount must be no more than {_money(MAX_AMOUNT, currency)}",
                code="amount_too_large",
                param="amount",
            )
        metadata = _metadata(params)
        confirm = _boolean(params, "confirm")
        receipt_email = self._receipt_email(params)
        payment_method = self._payment_method(params)
        intent_id = "pi_" + random_alnum(24)
        intent: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": 0,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": None,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": params.get("capture_method") or "automatic",
            "client_secret": f"{intent_id}_secret_{random_alnum(25)}",
            "confirmation_method": params.get("confirmation_method") or "automatic",
            "created": _now(),
            "currency": currency,
            "customer": params.get("customer"),
            "description": params.get("description"),
            "invoice": None,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": metadata,
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": payment_method["id"] if payment_method else None,
            "payment_method_configuration_details": None,
            "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
            "payment_method_types": params.get("payment_method_types") or ["card"],
            "processing": None,
            "receipt_email": receipt_email,
            "review": None,
            "setup_future_usage": params.get("setup_future_usage"),
            "shipping": None,
            "source": None,
            "statement_descriptor": params.get("statement_descriptor"),
            "statement_descriptor_suffix": params.get("statement_descriptor_suffix"),
            "status": "requires_confirmation" if payment_method else "requires_payment_method",
            "transfer_data": None,
            "transfer_group": None,
        }
        if confirm and payment_method is None:
            raise StripeError(
                400,
                "You cannot confirm this PaymentIntent because it's missing a payment method. You can "
                "either update the PaymentIntent with a payment method and then confirm it again, or "
                "confirm it again directly with a payment method.",
                code="payment_intent_unexpected_state",
            )
        self.intents[intent_id] = intent
        if confirm:
            self._process(request, intent, params)
        return intent

    def _confirm(self, request: Request, intent: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        _unknown(params, CONFIRM_PARAMS)
        if intent["status"] not in CONFIRMABLE:
            message = (
                "You cannot confirm this PaymentIntent because it has already succeeded after being "
                "previously confirmed."
                if intent["status"] == "succeeded"
                else f"You cannot confirm this PaymentIntent because it has a status of {intent['status']}."
            )
            raise StripeError(
                400,
                message,
                code="payment_intent_unexpected_state",
                payment_intent=copy.deepcopy(intent),
            )
        receipt_email = self._receipt_email(params)
        if receipt_email:
            intent["receipt_email"] = receipt_email
        payment_method = self._payment_method(params)
        if payment_method is not None:
            intent["payment_method"] = payment_method["id"]
        if intent["payment_method"] is None:
            raise StripeError(
                400,
                "You cannot confirm this PaymentIntent because it's missing a payment method. You can "
                "either update the PaymentIntent with a payment method and then confirm it again, or "
                "confirm it again directly with a payment method.",
                code="payment_intent_unexpected_state",
                payment_intent=copy.deepcopy(intent),
            )
        self._process(request, intent, params)
        return intent

    def _cancel(self, request: Request, intent: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        _unknown(params, CANCEL_PARAMS)
        reason = params.get("cancellation_reason")
        if reason is not None and reason not in CANCELLATION_REASONS:
            raise StripeError(
                400,
                f"Invalid cancellation_reason: must be one of {', '.join(CANCELLATION_REASONS)}",
                param="cancellation_reason",
            )
        if intent["status"] not in CANCELLABLE:
            raise StripeError(
                400,
                f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}. Only a "
                "PaymentIntent with one of the following statuses may be canceled: "
                + ", ".join(CANCELLABLE)
                + ".",
                code="payment_intent_unexpected_state",
                payment_intent=copy.deepcopy(intent),
            )
        intent.update(status="canceled", canceled_at=_now(), cancellation_reason=reason, next_action=None)
        self._emit(request, "payment_intent.canceled", intent)
        return intent

    def _receipt_email(self, params: dict[str, Any]) -> str | None:
        email = params.get("receipt_email")
        if email and not _EMAIL.match(str(email)):
            raise StripeError(
                400, f"Invalid email address: {email}", code="email_invalid", param="receipt_email"
            )
        return email or None

    def _payment_method(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """Resolve ``payment_method`` / ``payment_method_data`` to a PaymentMethod object."""
        pm_id = params.get("payment_method")
        data = params.get("payment_method_data")
        if pm_id:
            if pm_id in self.payment_methods:
                return self.payment_methods[pm_id][0]
            card = TEST_PAYMENT_METHODS.get(pm_id)
            if card is None:
                raise StripeError(
                    400,
                    f"No such PaymentMethod: '{pm_id}'",
                    code="resource_missing",
                    param="payment_method",
                )
            return self._new_payment_method(card)
        if isinstance(data, dict):
            if data.get("type") != "card":
                raise StripeError(
                    400,
                    "Missing required param: payment_method_data[type].",
                    code="parameter_missing",
                    param="payment_method_data[type]",
                )
            card_params = data.get("card") or {}
            if not isinstance(card_params, dict):
                raise StripeError(400, "Invalid object", param="payment_method_data[card]")
            if token := card_params.get("token"):
                card = TEST_TOKENS.get(token)
                if card is None:
                    raise StripeError(
                        400,
                        f"No such token: '{token}'",
                        code="resource_missing",
                        param="payment_method_data[card][token]",
                    )
                return self._new_payment_method(card)
            number = re.sub(r"[\s-]", "", str(card_params.get("number") or ""))
            if not number:
                raise _missing("payment_method_data[card][number]")
            card = TEST_CARD_NUMBERS.get(number)
            if card is None:
                raise StripeError(
                    402,
                    "Your card number is incorrect.",
                    type_="card_error",
                    code="incorrect_number",
                    param="number",
                )
            return self._new_payment_method(card)
        return None

    def _new_payment_method(self, card: TestCard) -> dict[str, Any]:
        pm = {
            "id": "pm_" + random_alnum(24),
            "object": "payment_method",
            "billing_details": {
                "address": dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state")),
                "email": None,
                "name": None,
                "phone": None,
            },
            "card": {
                "brand": card.brand,
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": None,
                    "cvc_check": "pass",
                },
                "country": "US",
                "exp_month": 12,
                "exp_year": time.gmtime().tm_year + 3,
                "fingerprint": random_alnum(16),
                "funding": card.funding,
                "last4": card.last4,
                "networks": {"available": [card.brand], "preferred": None},
                "three_d_secure_usage": {"supported": True},
                "wallet": None,
            },
            "created": _now(),
            "customer": None,
            "livemode": False,
            "metadata": {},
            "type": "card",
        }
        self.payment_methods[pm["id"]] = (pm, card)
        return pm

    def _process(self, request: Request, intent: dict[str, Any], params: dict[str, Any]) -> None:
        """Confirm ``intent`` with its payment method: succeed, decline (402) or ask for 3-D Secure."""
        pm, card = self.payment_methods[intent["payment_method"]]
        intent["last_payment_error"] = None
        if card.outcome == "authenticate":
            if _boolean(params, "off_session") or _boolean(params, "error_on_requires_action"):
                card = TestCard(
                    card.number,
                    card.brand,
                    "decline",
                    "authentication_required",
                    "authentication_required",
                    "Your card was declined. This transaction requires authentication.",
                )
            else:
                intent["status"] = "requires_action"
                intent["next_action"] = self._next_action(intent, params.get("return_url"))
                self._emit(request, "payment_intent.requires_action", intent)
                return
        if card.outcome == "decline":
            self._decline(request, intent, pm, card)
        self._succeed(request, intent)

    def _next_action(self, intent: dict[str, Any], return_url: str | None) -> dict[str, Any]:
        if return_url:
            challenge = f"{self.sandbox.base_url}/_sandbox/stripe/payment_intents/{intent['id']}/challenge"
            return {
                "type": "redirect_to_url",
                "redirect_to_url": {"return_url": return_url, "url": challenge},
            }
        return {
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {
                "type": "stripe_3ds2_fingerprint",
                "directory_server_name": "visa",
                "merchant": "acct_tidingslocal",
                "server_transaction_id": str(uuid.uuid4()),
                "three_d_secure_2_source": "src_" + random_alnum(24),
            },
        }

    def _charge(
        self, intent: dict[str, Any], pm: dict[str, Any], *, paid: bool, card: TestCard | None = None
    ) -> dict[str, Any]:
        charge = {
            "id": "ch_" + random_alnum(24),
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"] if paid else 0,
            "amount_refunded": 0,
            "balance_transaction": ("txn_" + random_alnum(24)) if paid else None,
            "billing_details": copy.deepcopy(pm["billing_details"]),
            "captured": paid,
            "created": _now(),
            "currency": intent["currency"],
            "description": intent["description"],
            "disputed": False,
            "failure_code": None if paid else (card.code if card else None),
            "failure_message": None if paid else (card.message if card else None),
            "livemode": False,
            "metadata": dict(intent["metadata"]),
            "outcome": {
                "network_status": "approved_by_network" if paid else "declined_by_network",
                "reason": None if paid else (card.decline_code if card else None),
                "risk_level": "normal",
                "seller_message": "Payment complete."
                if paid
                else "The bank did not return any further details with this decline.",
                "type": "authorized" if paid else "issuer_declined",
            },
            "paid": paid,
            "payment_intent": intent["id"],
            "payment_method": pm["id"],
            "receipt_email": intent["receipt_email"],
            "refunded": False,
            "status": "succeeded" if paid else "failed",
        }
        self.charges[charge["id"]] = charge
        return charge

    def _succeed(self, request: Request, intent: dict[str, Any]) -> None:
        pm, _card = self.payment_methods[intent["payment_method"]]
        charge = self._charge(intent, pm, paid=True)
        intent.update(
            status="succeeded",
            amount_received=intent["amount"],
            latest_charge=charge["id"],
            next_action=None,
            last_payment_error=None,
        )
        self._emit(request, "payment_intent.succeeded", intent)

    def _decline(self, request: Request, intent: dict[str, Any], pm: dict[str, Any], card: TestCard) -> None:
        charge = self._charge(intent, pm, paid=False, card=card)
        error = StripeError(
            402,
            card.message or "Your card was declined.",
            type_="card_error",
            code=card.code,
            decline_code=card.decline_code,
            param=card.param,
            charge=charge["id"],
        ).body
        intent.update(
            status="requires_payment_method",
            latest_charge=charge["id"],
            payment_method=None,
            next_action=None,
            last_payment_error={**error, "payment_method": copy.deepcopy(pm)},
        )
        self._emit(request, "payment_intent.payment_failed", intent)
        raise StripeError(
            402,
            error["message"],
            type_="card_error",
            code=card.code,
            decline_code=card.decline_code,
            param=card.param,
            charge=charge["id"],
            payment_intent=copy.deepcopy(intent),
            payment_method=copy.deepcopy(pm),
        )

    # --- 3-D Secure: the customer's side of the challenge -------------------------------------------

    def complete_action(self, intent_id: str, outcome: str) -> dict[str, Any]:
        with self.lock:
            intent = self._intent(intent_id)
            if intent["status"] != "requires_action":
                raise ValueError(f"payment intent is {intent['status']}, not requires_action")
            request = Request("POST", "", "", {}, b"", 0, time.time(), request_id=None)
            if outcome == "succeeded":
                self._succeed(request, intent)
            elif outcome == "failed":
                pm = copy.deepcopy(self.payment_methods[intent["payment_method"]][0])
                intent.update(
                    status="requires_payment_method",
                    payment_method=None,
                    next_action=None,
                    last_payment_error={
                        "code": "payment_intent_authentication_failure",
                        "doc_url": DOCS + "payment-intent-authentication-failure",
                        "message": AUTH_FAILURE_MESSAGE,
                        "payment_method": pm,
                        "type": "invalid_request_error",
                    },
                )
                self._emit(request, "payment_intent.payment_failed", intent)
            else:
                raise ValueError('outcome must be "succeeded" or "failed"')
            return copy.deepcopy(intent)

    def control(self, request: Request, subpath: str) -> Response | None:
        match = re.fullmatch(r"payment_intents/([^/]+)/(complete_action|challenge)", subpath)
        if match is None:
            return None
        if match[2] == "challenge" and request.method == "GET":
            return Response(200, _challenge_page(match[1]).encode(), [("Content-Type", "text/html")])
        if request.method != "POST":
            return None
        payload = (
            request.json_body() if request.body.lstrip().startswith(b"{") else decode_nested(request.body)
        )
        try:
            intent = self.complete_action(match[1], (payload or {}).get("outcome", "succeeded"))
        except StripeError as error:
            return Response.json(error.status, {"error": error.body})
        return Response.json(200, intent)

    # --- Refunds --------------------------------------------------------------------------------

    def _create_refund(self, request: Request, params: dict[str, Any]) -> dict[str, Any]:
        _unknown(params, REFUND_PARAMS)
        metadata = _metadata(params)
        amount = _integer(params, "amount")
        reason = params.get("reason")
        if reason is not None and reason not in REFUND_REASONS:
            raise StripeError(
                400,
                "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
                param="reason",
            )
        if params.get("payment_intent"):
            intent = self.intents.get(params["payment_intent"])
            if intent is None:
                raise StripeError(
                    404,
                    f"No such payment_intent: '{params['payment_intent']}'",
                    code="resource_missing",
                    param="payment_intent",
                )
            if intent["status"] != "succeeded":
                raise StripeError(
                    400,
                    f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                    param="payment_intent",
                )
            charge = self.charges[intent["latest_charge"]]
        elif params.get("charge"):
            charge = self.charges.get(params["charge"])
            if charge is None:
                raise StripeError(
                    404, f"No such charge: '{params['charge']}'", code="resource_missing", param="charge"
                )
            if not charge["paid"]:
                raise StripeError(400, f"Charge {charge['id']} has not been captured.", param="charge")
        else:
            raise StripeError(
                400,
                "One of the following params should be provided for this request: payment_intent or charge.",
            )
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining <= 0:
            raise StripeError(
                400, f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
            )
        if amount is None:
            amount = remaining
        if amount <= 0:
            raise StripeError(
                400, "Invalid positive integer", code="parameter_invalid_integer", param="amount"
            )
        if amount > remaining:
            raise StripeError(
                400,
                f"Refund amount ({_money(amount, charge['currency'])}) is greater than unrefunded amount on "
                f"charge ({_money(remaining, charge['currency'])})",
                code="amount_too_large",
                param="amount",
            )
        refund = {
            "id": "re_" + random_alnum(24),
            "object": "refund",
            "amount": amount,
            "balance_transaction": "txn_" + random_alnum(24),
            "charge": charge["id"],
            "created": _now(),
            "currency": charge["currency"],
            "destination_details": {
                "card": {"reference_status": "pending", "type": "refund"},
                "type": "card",
            },
            "metadata": metadata,
            "payment_intent": charge["payment_intent"],
            "reason": reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "succeeded",
            "transfer_reversal": None,
        }
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        self._emit(request, "charge.refunded", charge)
        return refund

    # --- the account: balance and webhook endpoints ------------------------------------------------

    def _balance(self) -> dict[str, Any]:
        """The test account's balance: what succeeded, less what was refunded, per currency."""
        totals: dict[str, int] = {}
        for charge in self.charges.values():
            if charge["paid"]:
                net = charge["amount"] - charge["amount_refunded"]
                totals[charge["currency"]] = totals.get(charge["currency"], 0) + net
        currencies = sorted(totals) or ["usd"]
        return {
            "object": "balance",
            "available": [{"amount": 0, "currency": c, "source_types": {"card": 0}} for c in currencies],
            "livemode": False,
            "pending": [
                {"amount": totals.get(c, 0), "currency": c, "source_types": {"card": totals.get(c, 0)}}
                for c in currencies
            ],
        }

    def _endpoint_fields(self, params: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        url = params.get("url")
        if url is not None or creating:
            if not url:
                raise _missing("url")
            if not isinstance(url, str) or not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
                raise StripeError(400, f"Invalid URL: {url}", code="url_invalid", param="url")
            fields["url"] = url
        events = params.get("enabled_events")
        if events is not None or creating:
            if not events:
                raise _missing("enabled_events")
            listed = events if isinstance(events, list) else [events]
            for index, name in enumerate(listed):
                if not isinstance(name, str) or not _EVENT_TYPE.fullmatch(name):
                    raise StripeError(
                        400,
                        f"Invalid enabled_events[{index}]: must be '*' or an event type",
                        param=f"enabled_events[{index}]",
                    )
            fields["enabled_events"] = list(dict.fromkeys(listed))
        if "description" in params:
            fields["description"] = params["description"] or None
        if "metadata" in params:
            fields["metadata"] = _metadata(params)
        return fields

    def _create_endpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        _unknown(params, WEBHOOK_CREATE_PARAMS)
        fields = self._endpoint_fields(params, creating=True)
        endpoint = {
            "id": "we_" + random_alnum(24),
            "object": "webhook_endpoint",
            "api_version": params.get("api_version") or None,
            "application": None,
            "created": _now(),
            "description": fields.get("description"),
            "enabled_events": fields["enabled_events"],
            "livemode": False,
            "metadata": fields.get("metadata", {}),
            "secret": "whsec_" + random_alnum(32),
            "status": "enabled",
            "url": fields["url"],
        }
        self.webhook_endpoints[endpoint["id"]] = endpoint
        return copy.deepcopy(endpoint)  # the only answer that carries the secret

    def _update_endpoint(self, endpoint: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        _unknown(params, WEBHOOK_UPDATE_PARAMS)
        endpoint.update(self._endpoint_fields(params, creating=False))
        if "disabled" in params:
            endpoint["status"] = "disabled" if _boolean(params, "disabled") else "enabled"
        return _public_endpoint(endpoint)

    def _list_endpoints(self, params: dict[str, Any]) -> dict[str, Any]:
        _unknown(params, frozenset({"ending_before", "expand", "limit", "starting_after"}))
        limit = _list_limit(params)
        newest_first = [_public_endpoint(e) for e in reversed(self.webhook_endpoints.values())]
        page = _after_cursor(newest_first, params, limit, "webhook endpoint")
        return {
            "object": "list",
            "data": page[:limit],
            "has_more": len(page) > limit,
            "url": "/v1/webhook_endpoints",
        }

    def _webhook_targets(self, event_type: str) -> list[tuple[str | None, str]]:
        """(url, signing secret) for each place an event of ``event_type`` goes; url None means the
        sandbox's configured URL."""
        if not self.webhook_endpoints:
            return [(None, self.webhook_secret)]
        return [
            (e["url"], e["secret"])
            for e in self.webhook_endpoints.values()
            if e["status"] == "enabled" and ("*" in e["enabled_events"] or event_type in e["enabled_events"])
        ]

    # --- webhooks -------------------------------------------------------------------------------

    def _emit(self, request: Request, event_type: str, obj: dict[str, Any]) -> None:
        event = {
            "id": "evt_" + random_alnum(24),
            "object": "event",
            "api_version": API_VERSION,
            "created": _now(),
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": request.request_id, "idempotency_key": request.header("Idempotency-Key")},
            "type": event_type,
        }
        self.events.append(event)
        body = json.dumps(event, indent=2).encode()

        def sender(url: str | None, secret: str) -> Callable[[], None]:
            def sign() -> dict[str, str]:
                return {"Stripe-Signature": stripe_signature_header(secret, body, _now())}

            def send() -> None:
                record = self.sandbox.webhooks.deliver(
                    url=url,
                    body=body,
                    content_type="application/json; charset=utf-8",
                    sign=sign,
                    event=event_type,
                )
                if record is not None and record["delivered"]:
                    with self.lock:
                        self.delivered_events.add(event["id"])

            return send

        for url, secret in self._webhook_targets(event_type):
            self.sandbox.webhooks.submit(sender(url, secret))


def _public_endpoint(endpoint: dict[str, Any]) -> dict[str, Any]:
    """An endpoint as Stripe shows it after creation: ``secret`` is not answered again."""
    shown = copy.deepcopy(endpoint)
    shown.pop("secret", None)
    return shown


def _request_id() -> str:
    return "req_" + random_alnum(14)


def _mask_key(key: str) -> str:
    if len(key) <= 12:
        return key[:3] + "*" * max(0, len(key) - 3)
    return key[:8] + "*" * (len(key) - 12) + key[-4:]


def _challenge_page(intent_id: str) -> str:
    action = f"/_sandbox/stripe/payment_intents/{intent_id}/complete_action"
    return (
        "<!doctype html><title>3D Secure test challenge</title>"
        f"<h1>3D Secure 2 test payment</h1><p>PaymentIntent {intent_id}</p>"
        f'<form method="post" action="{action}"><input type="hidden" name="outcome" value="succeeded">'
        "<button>Complete authentication</button></form>"
        f'<form method="post" action="{action}"><input type="hidden" name="outcome" value="failed">'
        "<button>Fail authentication</button></form>"
    )


PROVIDER = StripeProvider


def _list_limit(params: dict[str, Any]) -> int:
    """A list route's ``limit``: 10 by default, 1 to 100."""
    limit = _integer(params, "limit") or 10
    if not 1 <= limit <= 100:
        raise StripeError(400, "This value must be between 1 and 100.", param="limit")
    return limit


def _created_filter(params: dict[str, Any]) -> Callable[[int], bool]:
    """A list route's ``created`` bounds (``created=T`` or ``created[gt|gte|lt|lte]=T``) as a test."""
    created = params.get("created")
    bounds = created if isinstance(created, dict) else {"eq": created} if created else {}
    checks = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__, "eq": int.__eq__}
    for name, bound in bounds.items():
        if name not in checks or not re.fullmatch(r"\d+", str(bound)):
            raise StripeError(400, f"Invalid integer: {bound}", param=f"created[{name}]")
    return lambda value: all(checks[name](value, int(bound)) for name, bound in bounds.items())


def _after_cursor(
    objects: list[dict[str, Any]], params: dict[str, Any], limit: int, noun: str
) -> list[dict[str, Any]]:
    """Stripe's cursor paging over a newest-first list: what follows ``starting_after``, or the
    ``limit`` objects before ``ending_before``; an unknown cursor is a 404 as at Stripe."""
    ids = [obj["id"] for obj in objects]
    if cursor := params.get("starting_after"):
        if cursor not in ids:
            raise StripeError(404, f"No such {noun}: '{cursor}'", param="starting_after")
        return objects[ids.index(cursor) + 1 :]
    if cursor := params.get("ending_before"):
        if cursor not in ids:
            raise StripeError(404, f"No such {noun}: '{cursor}'", param="ending_before")
        return objects[: ids.index(cursor)][-limit:]
    return objects
