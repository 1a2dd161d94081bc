"""The channel interfaces callers hold, whichever provider is behind them (fallback without knowing)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, Protocol

from tidings.providers.models import (
    ChargeRequest,
    DeliveryReceipt,
    EmailMessage,
    PaymentResult,
    RefundableCharge,
    RefundResult,
    SmsMessage,
)

if TYPE_CHECKING:
    from tidings.providers.dedup import SendDeduplicator


class PaymentGateway(Protocol):
    name: str

    def charge(self, request: ChargeRequest) -> PaymentResult: ...
    def retrieve(self, payment_intent_id: str) -> PaymentResult: ...
    def refundable(self, payment_intent_id: str) -> RefundableCharge: ...
    def cancel(self, payment_intent_id: str, idempotency_key: str) -> PaymentResult: ...
    def refund(
        self, payment_intent_id: str, idempotency_key: str, amount: int | None = None
    ) -> RefundResult: ...
    def undelivered_events(self, created_from: int, created_to: int) -> Iterator[dict[str, Any]]: ...


class _Deliverer(Protocol):
    name: str

    def deliver(self, message: Any) -> DeliveryReceipt: ...


class _Channel:
    kind: Literal["email", "sms"]

    def __init__(self, deliverer: _Deliverer, dedup: SendDeduplicator | None) -> None:
        self.deliverer = deliverer
        self.dedup = dedup
        self.name = deliverer.name

    def _send(self, message: Any) -> DeliveryReceipt:
        if self.dedup is None:
            return self.deliverer.deliver(message)
        return self.dedup.send(self.kind, message, lambda: self.deliverer.deliver(message))


class EmailChannel(_Channel):
    """``send`` delivers once per ``idempotency_key`` (see :mod:`tidings.providers.dedup`)."""

    kind = "email"

    def send(self, message: EmailMessage) -> DeliveryReceipt:
        return self._send(message)


class SmsChannel(_Channel):
    """``send`` delivers once per ``idempotency_key`` (see :mod:`tidings.providers.dedup`)."""

    kind = "sms"

    def send(self, message: SmsMessage) -> DeliveryReceipt:
        return self._send(message)
