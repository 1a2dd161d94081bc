"""The notify API's bodies as typed models, written from its OpenAPI document (``GET /openapi.json``,
``docs/openapi.json`` in the repository) and checked against it by the SDK's tests.

Requests refuse unknown fields, as the API does, so a typo fails before anything is sent. Answers keep
fields this version does not know (``extra="allow"``): a newer API that adds a field does not break an
older SDK. Value rules (lengths, patterns, currencies, amounts) are the API's to enforce: a request that
breaks one is answered 422 and raised as :class:`tidings_sdk.ValidationFailed` with every problem found.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

#: Whether a channel's failure refunds the payment (``required``) or is only recorded.
ChannelPolicy = Literal["required", "best_effort"]

#: A notification's status: ``accepted``, ``running``, ``awaiting_payment_action``, then one final status.
NOTIFICATION_STATUSES = (
    "accepted",
    "running",
    "awaiting_payment_action",
    "cancelling",
    "delivered",
    "delivered_with_fallback",
    "partially_delivered",
    "payment_declined",
    "payment_not_taken",
    "compensated",
    "failed",
    "cancelled",
    "refunded",
    "partially_refunded",
)
#: The statuses a notification ends in (exactly one per notification; a refund after the end moves it
#: to ``refunded`` or ``partially_refunded``).
FINAL_STATUSES = frozenset(NOTIFICATION_STATUSES[4:])
#: A channel's status (it only moves forward).
CHANNEL_STATUSES = (
    "pending",
    "sent",
    "delivered",
    "rejected",
    "parked",
    "dead_lettered",
    "failed",
    "skipped",
)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- POST /notifications ----------------------------------------------------------------------------


class Customer(_Request):
    name: str
    email: str | None = None
    phone: str | None = Field(None, description="E.164, e.g. +447700900123; needed for an sms")


class Payment(_Request):
    amount: int = Field(description="In the currency's minor unit (pence, cents; whole yen)")
    currency: str = Field(description="ISO 4217, e.g. gbp")
    payment_method: str = Field(description="A Stripe PaymentMethod id (pm_...)")


class _Templated(_Request):
    """Raw content, or a template of the stack's catalogue with its data (the API checks which)."""

    template_id: str | None = Field(None, description="A catalogue template, instead of the raw content")
    dynamic_template_data: dict[str, JsonValue] | None = Field(None, description="The template's data")
    locale: str | None = Field(None, description="The customer's language (BCP 47), e.g. fr-CA")


class Receipt(_Templated):
    subject: str | None = None
    text: str | None = None


class SmsContent(_Templated):
    text: str | None = None


class DeliveryPolicy(_Request):
    email: ChannelPolicy = "best_effort"
    sms: ChannelPolicy = "best_effort"


class NotificationRequest(_Request):
    """Charge the customer, then e-mail the receipt and/or text them (the channels are the contents
    given: ``receipt``, ``sms``, both or neither)."""

    order_reference: str
    customer: Customer
    payment: Payment
    receipt: Receipt | None = None
    sms: SmsContent | None = None
    delivery_policy: DeliveryPolicy = Field(default_factory=DeliveryPolicy)
    new_charge: bool = False
    callback_url: str | None = None


class Accepted(_Answer):
    notification_id: str
    order_reference: str
    status: str
    status_url: str
    execution_arn: str | None = None


# --- POST /notifications/bulk -----------------------------------------------------------------------


class BulkRequest(BaseModel):
    """The items are checked one by one by the API (a bad one does not refuse the rest)."""

    items: list[dict[str, Any]]


class BulkItem(_Answer):
    """One item's result: ``accepted`` (with its notification), ``duplicate`` or ``rejected`` (why)."""

    index: int
    status: str
    notification_id: str | None = None
    errors: list[ErrorItem] | None = None


class BulkAccepted(_Answer):
    bulk_id: str
    status_url: str
    accepted: int
    rejected: int
    items: list[BulkItem]


class BulkItemStatus(BulkItem):
    notification_status: str | None = None
    status_url: str | None = None


class BulkStatus(_Answer):
    """``GET /notifications/bulk/{bulk_id}``: per-item results with each notification's status now."""

    bulk_id: str
    created_at: str
    item_count: int
    counts: dict[str, int]
    items: list[BulkItemStatus]


# --- GET /notifications/{notification_id} -----------------------------------------------------------


class MaskedCustomer(_Answer):
    name: str
    email: str | None
    phone: str | None


class PaymentView(_Answer):
    amount: int
    currency: str
    status: str | None
    payment_intent_id: str | None
    next_action_url: str | None
    refund_id: str | None
    refund_status: str | None
    amount_refunded: int | None = None


class Channel(_Answer):
    policy: str
    status: str = "pending"
    provider: str | None = None
    provider_message_id: str | None = None
    fallback: bool | None = None
    reason: str | None = None
    delivery_status: str | None = None
    delivery_updated_at: str | None = None
    updated_at: str | None = None


class TimelineEvent(_Answer):
    step: str
    outcome: str
    at: str
    provider: str | None = None
    attempt: int | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Notification(_Answer):
    """A notification's status, channels and timeline; contact details masked, contents never shown."""

    notification_id: str
    order_reference: str
    status: str
    status_reason: str | None
    created_at: str
    updated_at: str | None
    finished_at: str | None
    execution_arn: str | None
    customer: MaskedCustomer
    payment: PaymentView
    channels: dict[str, Channel]
    timeline: list[TimelineEvent]

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES


# --- GET /notifications -----------------------------------------------------------------------------


class ListedChannel(_Answer):
    policy: str | None = None
    status: str | None = None
    provider: str | None = None
    fallback: bool | None = None
    reason: str | None = None
    delivery_status: str | None = None


class ListedNotification(_Answer):
    notification_id: str
    order_reference: str | None = None
    bulk_id: str | None = None
    status: str | None = None
    status_reason: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    finished_at: str | None = None
    channels: dict[str, ListedChannel]
    status_url: str


class NotificationPage(_Answer):
    items: list[ListedNotification]
    count: int
    next_cursor: str | None = None


# --- GET /notifications/{notification_id}/timeline --------------------------------------------------


class TimelineEntry(_Answer):
    """One entry of the joined timeline; its other fields depend on ``source`` and ``kind``."""

    order: int
    at: str
    source: str
    actor: str
    kind: str


class Timeline(_Answer):
    notification_id: str
    order_reference: str
    status: str
    execution_arn: str | None = None
    entries: list[TimelineEntry]


# --- error answers ----------------------------------------------------------------------------------


class ErrorItem(_Answer):
    loc: list[str | int]
    type: str
    message: str


class ClientQuota(_Answer):
    per_second: float
    burst: int


class ErrorBody(_Answer):
    """What the API answers on a refusal: ``message``, a machine-readable ``code``, and per code more."""

    message: str
    code: str
    errors: list[ErrorItem] | None = None
    notification_id: str | None = None
    status_url: str | None = None
    retry_after_seconds: int | None = None
    requested: int | None = None
    quota: ClientQuota | None = None
    status: str | None = None
    remaining: int | None = None
    amount_refunded: int | None = None


# --- POST /notifications/{id}/refund and /cancel ------------------------------------------------------


class RefundRequest(_Request):
    amount: int | None = Field(None, description="Minor units; None refunds all that remains")


class RefundView(_Answer):
    refund_id: str
    amount: int
    status: str


class RefundedPayment(_Answer):
    amount: int
    currency: str
    amount_refunded: int
    remaining: int


class RefundAnswer(_Answer):
    notification_id: str
    status: str
    status_url: str
    refund: RefundView
    payment: RefundedPayment


class CancelAnswer(_Answer):
    notification_id: str
    status: str
    status_url: str
    waited_for: Literal["payment_action", "charge_reconciliation", "sms_outage_queue"] | None = None
