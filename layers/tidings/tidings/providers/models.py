"""What goes into and comes out of the provider channels (the saga codes against these names)."""

from __future__ import annotations

import html
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ChargeRequest(BaseModel):
    """A card charge; ``amount`` in the currency's minor unit (cents), ``currency`` ISO 4217."""

    model_config = ConfigDict(frozen=True)

    amount: int = Field(gt=0)
    currency: str = Field(min_length=3, max_length=3)
    payment_method: str = Field(min_length=1)
    description: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    idempotency_key: str = Field(min_length=1, max_length=255)
    receipt_email: str | None = None


class PaymentResult(BaseModel):
    """A PaymentIntent as the saga needs it. ``status`` is Stripe's (succeeded, requires_action, ...)."""

    payment_intent_id: str
    status: str
    amount: int
    currency: str
    next_action_url: str | None = None
    request_id: str | None = None


class RefundableCharge(BaseModel):
    """What Stripe says a PaymentIntent's charge holds: how much was taken and how much given back."""

    payment_intent_id: str
    #: The PaymentIntent's status (only a ``succeeded`` one has a charge to refund).
    status: str
    amount: int
    currency: str
    amount_refunded: int = 0
    charge_id: str | None = None

    @property
    def remaining(self) -> int:
        """What may still be refunded (nothing unless the payment succeeded)."""
        return max(self.amount - self.amount_refunded, 0) if self.status == "succeeded" else 0


class RefundResult(BaseModel):
    refund_id: str
    status: str
    payment_intent_id: str
    amount: int


def text_as_html(text: str) -> str:
    """An e-mail's HTML part made from its text alone: every character escaped, line breaks kept.

    Nothing a client sends is ever markup: a ``<a href>`` or ``<img>`` in a receipt shows as text.
    """
    lines = html.escape(text, quote=True).replace("\r\n", "\n").split("\n")
    return "<p>" + "<br>\n".join(lines) + "</p>"


class EmailMessage(BaseModel):
    """One e-mail to one recipient; the sender comes from configuration (RECEIPT_FROM_ADDRESS)."""

    model_config = ConfigDict(frozen=True)

    to: str = Field(min_length=3)
    to_name: str | None = None
    subject: str = Field(min_length=1)
    text: str = Field(min_length=1)
    html: str | None = None
    idempotency_key: str = Field(min_length=1, max_length=200)
    custom_args: dict[str, str] = Field(default_factory=dict)
    #: A templated receipt: the SendGrid dynamic template of its locale and the data SendGrid renders it
    #: with (subject, text and html above are Tidings' rendering of the same source, for SES).
    sendgrid_template_id: str | None = None
    template_data: dict[str, Any] | None = None


class SmsMessage(BaseModel):
    """One text message; ``to`` in E.164 (+447700900123)."""

    model_config = ConfigDict(frozen=True)

    to: str = Field(pattern=r"^\+[1-9][0-9]{6,14}$")
    body: str = Field(min_length=1, max_length=1600)
    idempotency_key: str = Field(min_length=1, max_length=200)
    status_callback_url: str | None = None


class DeliveryReceipt(BaseModel):
    """Proof a channel accepted a message; ``deduplicated`` means it was accepted by an earlier call."""

    provider: str
    provider_message_id: str
    deduplicated: bool = False
    attempts: int = 1
