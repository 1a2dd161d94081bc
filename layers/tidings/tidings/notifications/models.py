"""What a notification is: its request, its channels, its final statuses and its timeline.

The notification table holds one ``META`` item per notification (contact details, content, current
status, channel outcomes) and one ``EVENT#...`` item per thing that happened to it. Contact details live
only in the table: Step Functions input, queue messages and logs carry the notification id instead.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    JsonValue,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictInt,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from tidings.notifications.currencies import STRIPE_CURRENCIES, STRIPE_MAXIMUM_AMOUNT, minimum_amount

#: E.164 with ASCII digits only (``\\d`` would also take Arabic-Indic and other Unicode digits).
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

#: Characters no text that reaches an e-mail or a text message may carry: C0 and C1 controls (NUL
#: included) other than the line breaks and tabs a body may hold, lone surrogates (they cannot be encoded
#: and would fail the send), and the bidirectional embeddings, overrides and isolates that make a text
#: read differently from what it says (CVE-2021-42574).
_UNSAFE_IN_BODY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
#: The same for one-line texts (a name or a subject becomes a header): no line break, tab or separator.
_UNSAFE_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _safe_text(pattern: re.Pattern[str]) -> AfterValidator:
    def check(value: str) -> str:
        if pattern.search(value):
            raise PydanticCustomError(
                "unsafe_character", "must not contain control characters, NUL or bidirectional overrides"
            )
        return value

    return AfterValidator(check)


#: Text for a header or a single line (a name, a subject).
LineText = Annotated[str, _safe_text(_UNSAFE_IN_LINE)]
#: Text for a body (receipt text, SMS): line breaks and tabs allowed.
BodyText = Annotated[str, _safe_text(_UNSAFE_IN_BODY)]


class _EmailSyntax:
    """Pydantic's ``EmailStr`` (same check, same answer, same schema), with the ``email-validator``
    package imported on the first address parsed rather than when a model is built: most functions only
    read addresses the notify API checked already."""

    def __get_pydantic_core_schema__(self, _source: Any, _handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_email, core_schema.str_schema())

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        field_schema = handler(schema)
        field_schema.update(type="string", format="email")
        return field_schema


def _email(value: str) -> str:
    from pydantic.networks import validate_email  # imports email-validator on its first call

    return validate_email(value)[1]


#: An e-mail address, normalised as ``EmailStr`` does.
EmailAddress = Annotated[str, _EmailSyntax()]


class ChannelPolicy(StrEnum):
    """Whether a channel's failure undoes the payment (``required``) or only gets recorded."""

    REQUIRED = "required"
    BEST_EFFORT = "best_effort"


#: The delivery channels a notification may ask for (its ``receipt`` and ``sms`` content).
CHANNELS = ("email", "sms")
#: The execution input's ``delivery_policy`` for a channel the notification did not ask for: the saga
#: skips it without calling a provider, and it counts for nothing in the final status.
NOT_REQUESTED = "not_requested"


class NotificationStatus(StrEnum):
    ACCEPTED = "accepted"  # stored, saga not started yet (bulk items wait in the bulk queue)
    RUNNING = "running"
    AWAITING_PAYMENT_ACTION = "awaiting_payment_action"
    #: The shop cancelled a waiting saga: it is cancelling (or refunding) the payment on its way to
    #: ``cancelled``.
    CANCELLING = "cancelling"
    # Final statuses: exactly one per execution.
    DELIVERED = "delivered"
    DELIVERED_WITH_FALLBACK = "delivered_with_fallback"
    PARTIALLY_DELIVERED = "partially_delivered"
    PAYMENT_DECLINED = "payment_declined"
    PAYMENT_NOT_TAKEN = "payment_not_taken"  # an uncertain charge that Stripe has no record of
    COMPENSATED = "compensated"
    FAILED = "failed"
    #: Cancelled by the shop while its saga waited; whatever was taken was given back.
    CANCELLED = "cancelled"
    # After the end: the shop refunded the whole payment, or part of it (POST .../refund).
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


FINAL_STATUSES = frozenset(
    {
        NotificationStatus.DELIVERED,
        NotificationStatus.DELIVERED_WITH_FALLBACK,
        NotificationStatus.PARTIALLY_DELIVERED,
        NotificationStatus.PAYMENT_DECLINED,
        NotificationStatus.PAYMENT_NOT_TAKEN,
        NotificationStatus.COMPENSATED,
        NotificationStatus.FAILED,
        NotificationStatus.CANCELLED,
        NotificationStatus.REFUNDED,
        NotificationStatus.PARTIALLY_REFUNDED,
    }
)


class ChannelStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"  # accepted by a provider
    DELIVERED = "delivered"  # confirmed by the provider's delivery webhook
    REJECTED = "rejected"  # permanent refusal (invalid address/number, content refused)
    PARKED = "parked"  # waiting on the outage queue for a later try
    DEAD_LETTERED = "dead_lettered"  # all tries spent; in the channel's dead-letter queue
    FAILED = "failed"  # failed for good (a required channel: the payment was refunded)
    SKIPPED = "skipped"  # never attempted (payment declined, saga compensated first)


#: The order a channel's status may move in: a write only ever keeps or raises the rank (see
#: ``NotificationStore.update_channel``, the one place that writes it). A dead-lettered message can
#: still be redriven and sent; a provider's confirmation outranks our "sent"; a permanent refusal
#: (bounce, undelivered) outranks a confirmation; "failed" (refunded for it) is the end.
CHANNEL_STATUS_RANK: dict[ChannelStatus, int] = {
    ChannelStatus.PENDING: 0,
    ChannelStatus.SKIPPED: 1,
    ChannelStatus.PARKED: 1,
    ChannelStatus.DEAD_LETTERED: 2,
    ChannelStatus.SENT: 3,
    ChannelStatus.DELIVERED: 4,
    ChannelStatus.REJECTED: 5,
    ChannelStatus.FAILED: 6,
}


def statuses_replaceable_by(status: str) -> list[str]:
    """The channel statuses ``status`` may overwrite: lower ranks, and itself (a rewrite is harmless)."""
    rank = CHANNEL_STATUS_RANK[ChannelStatus(status)]
    return [name.value for name, other in CHANNEL_STATUS_RANK.items() if other < rank or name == status]


# --- the request a client sends --------------------------------------------------------------------

OrderReference = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/#-]*$")
]


class Customer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: LineText = Field(min_length=1, max_length=200)
    email: EmailAddress | None = Field(default=None, description="Needed when the request has a receipt")
    phone: str | None = Field(
        default=None,
        description="E.164 with ASCII digits, e.g. +447700900123; needed for an sms",
        json_schema_extra={"pattern": E164.pattern},
    )

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is not None and not E164.fullmatch(value):
            raise ValueError("phone must be in E.164 format: + then 7 to 15 digits")
        return value


#: The OpenAPI document lists the currencies (lower case; the API also takes upper case).
_CURRENCY_ENUM: list[JsonValue] = [code for code in sorted(STRIPE_CURRENCIES)]


class Payment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Strict: a JSON number only (``true``, ``"1000"`` and ``1000.0`` are refused, not converted).
    amount: StrictInt = Field(
        gt=0,
        le=STRIPE_MAXIMUM_AMOUNT,
        description=(
            "In the currency's minor unit (cents, pence; whole units for zero-decimal currencies such as "
            "jpy), at least Stripe's minimum for the currency (gbp 30, usd 50, eur 50, jpy 50...)"
        ),
    )
    currency: str = Field(
        min_length=3,
        max_length=3,
        description="ISO 4217 code Stripe charges cards in, e.g. gbp (case-insensitive)",
        json_schema_extra={"enum": _CURRENCY_ENUM},
    )
    payment_method: str = Field(pattern=r"^pm_[A-Za-z0-9_]{1,200}$", description="Stripe PaymentMethod id")

    @field_validator("currency")
    @classmethod
    def _stripe_currency(cls, value: str) -> str:
        code = value.lower()
        if code not in STRIPE_CURRENCIES:
            message = "currency must be one Stripe charges cards in"
            raise PydanticCustomError("currency_not_supported", message)
        return code

    @model_validator(mode="after")
    def _stripe_minimum(self) -> Payment:
        minimum = minimum_amount(self.currency)
        if self.amount < minimum:
            raise PydanticCustomError(
                "amount_below_minimum",
                "amount is below Stripe's minimum of {minimum} for {currency}",
                {"minimum": minimum, "currency": self.currency},
            )
        return self


#: A Tidings template's id: its directory in the layer's catalogue (docs/templates.md).
TEMPLATE_ID_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
#: A BCP 47 language tag as shops send them: ``en``, ``fr-CA``, ``pt-BR``.
LOCALE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$"

_TEMPLATE_ID_DOC = (
    "A template of the stack's catalogue (docs/templates.md), instead of the raw content; SendGrid gets "
    "the locale's dynamic template with dynamic_template_data, SES and SMS Tidings' rendering of the same "
    "source"
)
_DATA_DOC = (
    "The template's data, as SendGrid's mail/send takes dynamic_template_data; it must fit the "
    "template's declared fields (else 422 template_data_invalid, before any charge)"
)
_LOCALE_DOC = (
    "The customer's language (BCP 47, e.g. fr or fr-CA): that variant of the template, else its language, "
    "else the template's default locale"
)


class _Templated(BaseModel):
    """Either raw content or a template with its data (checked against the catalogue at the API)."""

    model_config = ConfigDict(extra="forbid")

    template_id: str | None = Field(default=None, pattern=TEMPLATE_ID_PATTERN, description=_TEMPLATE_ID_DOC)
    dynamic_template_data: dict[str, JsonValue] | None = Field(default=None, description=_DATA_DOC)
    locale: str | None = Field(default=None, pattern=LOCALE_PATTERN, description=_LOCALE_DOC)

    @property
    def templated(self) -> bool:
        return self.template_id is not None

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.dynamic_template_data or {})

    def _one_form(self, raw: tuple[str, ...]) -> None:
        given = [name for name in raw if getattr(self, name) is not None]
        if self.template_id is None:
            if self.dynamic_template_data is not None or self.locale is not None:
                raise PydanticCustomError(
                    "template_id_missing", "dynamic_template_data and locale need a template_id"
                )
            if len(given) != len(raw):
                raise PydanticCustomError(
                    "content_missing", "give {fields}, or a template_id", {"fields": " and ".join(raw)}
                )
        elif given:
            raise PydanticCustomError(
                "content_and_template",
                "give {fields} or a template_id, not both",
                {"fields": " and ".join(raw)},
            )


class Receipt(_Templated):
    """The receipt e-mail's content: a subject and plain text, or a template with its data.

    Raw text's HTML part is rendered from the text with every character escaped
    (``tidings.providers.models.text_as_html``), so a receipt cannot carry markup, links or tracking
    images a client did not see; an ``html`` field is refused as an unknown one. A template's HTML comes
    from the stack's own catalogue, with the data autoescaped."""

    subject: LineText | None = Field(default=None, min_length=1, max_length=200)
    text: BodyText | None = Field(default=None, min_length=1, max_length=20_000)

    @model_validator(mode="after")
    def _content_or_template(self) -> Receipt:
        self._one_form(("subject", "text"))
        return self


class StoredReceipt(Receipt):
    """A receipt as the table holds it: an ``html`` kept from before receipts became text only is
    ignored (never sent)."""

    model_config = ConfigDict(extra="ignore")


class SmsContent(_Templated):
    """The SMS: its text, or a template with an SMS part and its data."""

    text: BodyText | None = Field(default=None, min_length=1, max_length=1_600)

    @model_validator(mode="after")
    def _content_or_template(self) -> SmsContent:
        self._one_form(("text",))
        return self


class DeliveryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: ChannelPolicy = ChannelPolicy.BEST_EFFORT
    sms: ChannelPolicy = ChannelPolicy.BEST_EFFORT


class NotificationRequest(BaseModel):
    """``POST /notifications``: charge the customer, then e-mail the receipt and/or text them.

    The channels asked for are the contents given: ``receipt`` (needs ``customer.email``), ``sms`` (needs
    ``customer.phone``), both, or neither (the payment alone).
    """

    model_config = ConfigDict(extra="forbid")

    order_reference: OrderReference
    customer: Customer
    payment: Payment
    receipt: Receipt | None = Field(default=None, description="E-mail the receipt (omit: no e-mail)")
    sms: SmsContent | None = Field(default=None, description="Text the customer (omit: no SMS)")
    delivery_policy: DeliveryPolicy = Field(default_factory=DeliveryPolicy)
    new_charge: StrictBool = Field(
        default=False,
        description=(
            "Charge again for an order that already has a notification holding a charge (in flight, "
            "charged, or failed). Without it such a request is refused with 409 order_already_charged."
        ),
    )
    callback_url: str | None = Field(
        default=None,
        max_length=2048,
        description=(
            "An https URL that receives this notification's status events, signed the Standard Webhooks "
            "way (docs/callbacks.md); without it the stack's default callback URL, if one is set."
        ),
        examples=["https://shop.example.com/tidings/events"],
    )

    @field_validator("callback_url")
    @classmethod
    def _callback_url(cls, value: str | None) -> str | None:
        from pydantic_core import PydanticCustomError

        from tidings.outbound.urls import CallbackUrlRefused, url_shape

        if value is None:
            return None
        try:
            return url_shape(value)
        except CallbackUrlRefused as refused:
            # The error's type is the reason (credentials_in_url, ...), as the API's own check answers.
            raise PydanticCustomError(refused.reason, refused.message) from None

    @model_validator(mode="after")
    def _channels_have_recipients(self) -> NotificationRequest:
        if self.receipt is not None and self.customer.email is None:
            raise ValueError("a receipt needs customer.email")
        if self.sms is not None and self.customer.phone is None:
            raise ValueError("an sms needs customer.phone")
        for channel in CHANNELS:
            policy = getattr(self.delivery_policy, channel)
            if policy == ChannelPolicy.REQUIRED and channel not in self.channels:
                raise ValueError(f"delivery_policy.{channel} is required but the request has no {channel}")
        return self

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels asked for, in the saga's order."""
        content = {"email": self.receipt, "sms": self.sms}
        return tuple(channel for channel in CHANNELS if content[channel] is not None)

    def recipient(self, channel: str) -> str | None:
        return self.customer.email if channel == "email" else self.customer.phone


# --- what the table keeps ---------------------------------------------------------------------------
#
# Read models of the table's items. They ignore attributes they do not know (an item written by a newer
# deployment still reads), and every field a writer may leave out is optional, so ``model_dump(
# exclude_none=True)`` is the item as written.


class SparseRecord(BaseModel):
    """A record that dumps only the fields it has (not None): the item as written, in the table and in
    the API's answers alike."""

    model_config = ConfigDict(extra="ignore")

    @model_serializer(mode="wrap")
    def _without_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {name: value for name, value in handler(self).items() if value is not None}


class TimelineEvent(SparseRecord):
    """One thing that happened to a notification (a step's attempt, a webhook, a redrive)."""

    step: str
    outcome: str
    at: str
    provider: str | None = None
    attempt: int | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class ChannelRecord(SparseRecord):
    """``channels.<email|sms>``: the channel's policy, its status (forward only) and its message."""

    policy: ChannelPolicy
    status: ChannelStatus = ChannelStatus.PENDING
    provider: str | None = None
    provider_message_id: str | None = None
    fallback: bool | None = None
    #: Why the status is what it is (a provider's code, ``providers_unavailable``, ``tries_spent``).
    reason: str | None = None
    #: The provider's own word from its delivery webhook (``delivered``, ``bounced``...).
    delivery_status: str | None = None
    delivery_updated_at: str | None = None
    updated_at: str | None = None


class PaymentRecord(BaseModel):
    """``payment``: what to charge, and what became of the charge (Stripe's ids and statuses)."""

    model_config = ConfigDict(extra="ignore")

    amount: int
    currency: str
    payment_method: str
    #: ``pending`` until charged, then Stripe's PaymentIntent status, ``declined``,
    #: ``partially_refunded`` or ``refunded`` (none while a charge's outcome is unknown).
    status: str | None = None
    payment_intent_id: str | None = None
    next_action_url: str | None = None
    #: The latest refund (the saga's compensation, or the shop's).
    refund_id: str | None = None
    refund_status: str | None = None
    #: How much of the charge Stripe has refunded, as of the latest refund (minor units).
    amount_refunded: int | None = None


class Compensation(BaseModel):
    """A refund made after the saga ended, because a ``required`` channel failed for good (a bounce)."""

    model_config = ConfigDict(frozen=True)

    channel: str
    #: Why the channel failed (the provider's word: ``bounced``, ``undelivered``...).
    reason: str
    refund_id: str
    refund_status: str
    payment_intent_id: str


class Notification(BaseModel):
    """The notification's ``META`` item: request content, status, payment, channels, bulk membership."""

    model_config = ConfigDict(extra="ignore")

    notification_id: str
    client_id: str
    order_reference: str
    status: NotificationStatus
    status_reason: str | None = None
    created_at: str
    updated_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    execution_arn: str | None = None
    customer: Customer
    payment: PaymentRecord
    receipt: StoredReceipt | None = None
    sms: SmsContent | None = None
    #: The channels asked for only (a notification without an SMS has no ``sms`` entry).
    channels: dict[str, ChannelRecord] = Field(default_factory=dict)
    #: The bulk request this notification came in with, if any.
    bulk_id: str | None = None
    #: The API call's request id (X-Request-Id, else API Gateway's): its saga, provider calls, webhooks
    #: and dead-letter bodies carry it on.
    request_id: str | None = None
    #: The Step Functions task token while the saga waits for 3-D Secure.
    payment_task_token: str | None = None
    #: The Step Functions task token while the saga waits for its uncertain charge to be reconciled
    #: (AwaitChargeReconciliation; ReconcilePayment resumes it).
    charge_task_token: str | None = None
    #: The Step Functions task token while a required SMS waits on the outage queue (RetryDelivery
    #: stores it on its first try, so the shop's cancel can find it).
    sms_task_token: str | None = None
    #: When the shop cancelled the notification (``POST /notifications/{id}/cancel``).
    cancel_requested_at: str | None = None
    #: Where this notification's status events are POSTed (else the stack's default, if any).
    callback_url: str | None = None

    @classmethod
    def accepted(
        cls,
        notification_id: str,
        client_id: str,
        request: NotificationRequest,
        *,
        at: str,
        bulk_id: str | None = None,
        request_id: str | None = None,
    ) -> Notification:
        """A new notification for ``request``, not started yet; every channel pending."""
        return cls(
            notification_id=notification_id,
            client_id=client_id,
            order_reference=request.order_reference,
            status=NotificationStatus.ACCEPTED,
            created_at=at,
            updated_at=at,
            customer=request.customer,
            payment=PaymentRecord(**request.payment.model_dump(), status="pending"),
            receipt=StoredReceipt.model_validate(request.receipt.model_dump()) if request.receipt else None,
            sms=request.sms,
            channels={
                channel: ChannelRecord(policy=getattr(request.delivery_policy, channel))
                for channel in request.channels
            },
            bulk_id=bulk_id,
            callback_url=request.callback_url,
            request_id=request_id,
        )

    @property
    def delivery_policy(self) -> dict[str, str]:
        """Each channel's policy, as the saga's execution input carries it (``not_requested`` for a
        channel the notification did not ask for: every channel has a key, as the state machine's
        Choice states read them)."""
        return {
            name: channel.policy.value if (channel := self.channels.get(name)) else NOT_REQUESTED
            for name in CHANNELS
        }

    def recipient(self, channel: str) -> str | None:
        return self.customer.email if channel == "email" else self.customer.phone

    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


BulkItemStatus = Literal["accepted", "rejected", "duplicate"]


class FieldError(BaseModel):
    """One validation error, machine-readable, without the offending input (it may be personal data)."""

    loc: list[str | int]
    type: str
    message: str


class BulkItem(SparseRecord):
    """One item of a bulk request: accepted (with its notification), a duplicate, or rejected (why)."""

    index: int
    status: BulkItemStatus
    notification_id: str | None = None
    errors: list[FieldError] | None = None


class Bulk(BaseModel):
    """A bulk request (``BULK#<id>`` / ``META``) and its per-item results (its ``PAGE#`` items)."""

    model_config = ConfigDict(extra="ignore")

    bulk_id: str
    client_id: str
    created_at: str
    item_count: int
    items: list[BulkItem] = Field(default_factory=list)
    #: SHA-256 of the request's items, for a request with an ``Idempotency-Key``: the same key with
    #: other items is refused rather than answered with this request's results.
    request_hash: str | None = None
