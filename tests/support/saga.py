"""Helpers for the saga's unit tests: moto tables built from template.yaml, a request, provider fakes."""

from __future__ import annotations

import itertools
from typing import Any

import boto3

from support.template import create_table
from tidings import errors
from tidings.notifications.models import NotificationRequest
from tidings.providers.models import DeliveryReceipt, PaymentResult, RefundResult


def create_table_from_template(logical_id: str, name: str) -> Any:
    """A moto table with exactly the template's key schema, so tests and infrastructure cannot drift."""
    create_table(boto3.client("dynamodb"), logical_id, name)
    return boto3.resource("dynamodb").Table(name)


def notification_request(**overrides: Any) -> NotificationRequest:
    body: dict[str, Any] = {
        "order_reference": "order-1001",
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+447700900123"},
        "payment": {"amount": 2599, "currency": "GBP", "payment_method": "pm_card_visa"},
        "receipt": {"subject": "Your receipt", "text": "Thank you for order 1001."},
        "sms": {"text": "Order 1001 is paid. Thank you!"},
    }
    body.update(overrides)
    return NotificationRequest.model_validate(body)


class FakeGateway:
    """The PaymentGateway interface, scripted: each call pops the next outcome (result or error)."""

    def __init__(self) -> None:
        self.charge_outcomes: list[Any] = []
        self.refund_outcomes: list[Any] = []
        self.retrieve_status = "requires_action"
        self.charges: list[Any] = []
        self.refunds: list[tuple[str, str]] = []
        self.cancels: list[tuple[str, str]] = []
        self.lookups: list[tuple[str, str, int]] = []
        self._ids = itertools.count(1)

    def charge(self, request: Any) -> PaymentResult:
        self.charges.append(request)
        outcome = self.charge_outcomes.pop(0) if self.charge_outcomes else "succeeded"
        if isinstance(outcome, Exception):
            raise outcome
        return PaymentResult(
            payment_intent_id=f"pi_{next(self._ids)}",
            status=outcome,
            amount=request.amount,
            currency=request.currency,
            next_action_url="https://hooks.stripe.test/3ds" if outcome == "requires_action" else None,
        )

    def retrieve(self, payment_intent_id: str) -> PaymentResult:
        return PaymentResult(
            payment_intent_id=payment_intent_id, status=self.retrieve_status, amount=1, currency="gbp"
        )

    def find_by_metadata(
        self, key: str, value: str, created_from: int, created_to: int | None = None
    ) -> PaymentResult | None:
        self.lookups.append((key, value, created_from))
        for number, request in enumerate(self.charges, start=1):
            if (request.metadata or {}).get(key) == value:
                return PaymentResult(
                    payment_intent_id=f"pi_{number}",
                    status="succeeded",
                    amount=request.amount,
                    currency="gbp",
                )
        return None

    def cancel(self, payment_intent_id: str, idempotency_key: str) -> PaymentResult:
        self.cancels.append((payment_intent_id, idempotency_key))
        return PaymentResult(payment_intent_id=payment_intent_id, status="canceled", amount=1, currency="gbp")

    def refund(self, payment_intent_id: str, idempotency_key: str, amount: int | None = None) -> RefundResult:
        self.refunds.append((payment_intent_id, idempotency_key))
        outcome = self.refund_outcomes.pop(0) if self.refund_outcomes else None
        if isinstance(outcome, Exception):
            raise outcome
        return RefundResult(
            refund_id="re_1", status="succeeded", payment_intent_id=payment_intent_id, amount=2599
        )


class FakeChannel:
    """An EmailChannel/SmsChannel: records messages; scripted failures pop first."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.failures: list[Exception] = []
        self.sent: list[Any] = []

    def send(self, message: Any) -> DeliveryReceipt:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)
        return DeliveryReceipt(provider=self.name, provider_message_id=f"{self.name}-{len(self.sent)}")


def unavailable(provider: str) -> errors.ProviderUnavailable:
    return errors.ProviderUnavailable("server error", provider=provider, status=503)


def invalid(provider: str) -> errors.InvalidRequest:
    return errors.InvalidRequest("invalid number", provider=provider, status=400, code="21211", field="To")
