"""What each step of the notification saga does. Handlers in functions/ are thin wrappers over these.

Every step reads what it needs from the notification table by id (contact details never travel through
Step Functions), calls one provider through the layer, records the attempt in the timeline, and either
returns a small result or lets the typed error escape: its class name is what the state machine's
Retry/Catch match on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from tidings.errors import InvalidRequest, ProviderError, ProviderSwitchedOff, RecipientSuppressed
from tidings.notifications.models import (
    CHANNEL_STATUS_RANK,
    NOT_REQUESTED,
    ChannelPolicy,
    ChannelStatus,
    Notification,
    TimelineEvent,
)
from tidings.notifications.store import NotificationStore, get_store
from tidings.observability import logger
from tidings.saga import keys
from tidings.saga.outcome import OutcomeInput, decide
from tidings.saga.results import (
    CancelResult,
    ChargeReconciliationAwaited,
    ChargeResult,
    OutcomeResult,
    PaymentActionAwaited,
    RefundResult,
    SendResult,
)

if TYPE_CHECKING:
    from tidings.providers.models import EmailMessage, SmsMessage
    from tidings.suppressions.service import SuppressionService

EMAIL = "email"
SMS = "sms"

#: Step names used in the timeline; they match the state names a person sees in the console.
STEP_NAMES = {
    (EMAIL, "sendgrid"): "SendReceiptEmail",
    (EMAIL, "ses"): "SendReceiptEmailViaSes",
    (SMS, "twilio"): "SendSms",
    (SMS, "sns"): "SendSmsViaSns",
}
PRIMARY = {EMAIL: "sendgrid", SMS: "twilio"}
FALLBACK = {EMAIL: "ses", SMS: "sns"}
#: Twilio's refusal of a recipient who opted out (texted STOP): suppressed from then on.
TWILIO_OPTED_OUT = "21610"
#: ``SendResult.skipped`` and the channel's reason for a suppressed recipient.
SUPPRESSED = "suppressed"
#: The timeline's reason (and the error's code) when the fallback switches skip the primary provider.
SWITCHED_OFF = "switched_off"


class NoPaymentIntent(LookupError):
    """A step needs the notification's PaymentIntent, and the charge never created one."""


def payment_intent_of(notification: Notification) -> str:
    payment_intent_id = notification.payment.payment_intent_id
    if payment_intent_id is None:
        raise NoPaymentIntent(f"notification {notification.notification_id} has no PaymentIntent")
    return payment_intent_id


def _error_details(error: Exception) -> dict[str, Any]:
    if isinstance(error, ProviderError):
        return {key: value for key, value in error.to_dict().items() if value is not None}
    # Not a provider error (a bug, a dependency): keep only the type, never a message that may hold data.
    return {"error_type": type(error).__name__}


def _latency(started: float) -> dict[str, int]:
    """How long the provider call took, with its retries inside the step (the timeline shows it)."""
    return {"latency_ms": round((time.monotonic() - started) * 1000)}


@dataclass
class SagaSteps:
    """The steps, with their collaborators injectable (tests hand in fakes of the provider interfaces)."""

    store: NotificationStore
    payment_gateway: Callable[[], Any]
    email_channel: Callable[[str], Any]
    sms_channel: Callable[[str], Any]
    status_callback_url: Callable[[str], str | None] = field(default=lambda _nid: None)
    #: The suppression list, looked up before every send (None: no list, as in tests without one).
    suppressions: Callable[[], SuppressionService | None] = field(default=lambda: None)
    #: Whether the live fallback switches send a provider's channel through its fallback only.
    switched_off: Callable[[str], bool] = field(default=lambda _provider: False)

    # --- payment --------------------------------------------------------------------------------
    def charge_payment(self, notification_id: str, attempt: int = 0) -> ChargeResult:
        from tidings.providers.models import ChargeRequest

        notification = self.store.start_running(notification_id)
        _carry_request_id(notification)
        payment = notification.payment
        request = ChargeRequest(
            amount=payment.amount,
            currency=payment.currency,
            payment_method=payment.payment_method,
            description=f"Order {notification.order_reference}",
            metadata={
                "notification_id": notification_id,
                "order_reference": notification.order_reference,
                **_request_metadata(notification),
            },
            idempotency_key=keys.charge_key(notification_id),
        )
        started = time.monotonic()
        try:
            result = self.payment_gateway().charge(request)
        except ProviderError as error:
            details = _error_details(error) | _latency(started)
            self._record(notification_id, "ChargePayment", "failed", "stripe", attempt, details)
            if error.__class__.__name__ == "PaymentDeclined":
                self.store.set_payment_status(notification_id, "declined")
            raise
        self.store.link_payment_intent(notification_id, result.payment_intent_id)
        self.store.record_charge(
            notification_id,
            payment_intent_id=result.payment_intent_id,
            status=result.status,
            next_action_url=result.next_action_url,
        )
        self._record(
            notification_id,
            "ChargePayment",
            result.status,
            "stripe",
            attempt,
            {"payment_intent_id": result.payment_intent_id, "request_id": result.request_id}
            | _latency(started),
        )
        return ChargeResult(status=result.status, payment_intent_id=result.payment_intent_id)

    def await_payment_action(
        self, notification_id: str, payment_intent_id: str, task_token: str
    ) -> PaymentActionAwaited:
        """Park the saga until the customer finishes 3-D Secure: the Stripe webhook resumes it."""
        self.store.store_task_token(notification_id, task_token)
        self._record(
            notification_id,
            "WaitForPaymentAction",
            "waiting",
            "stripe",
            None,
            {"payment_intent_id": payment_intent_id},
        )
        return PaymentActionAwaited()

    def await_charge_reconciliation(
        self, notification_id: str, task_token: str
    ) -> ChargeReconciliationAwaited:
        """Park the saga after an uncertain charge: ReconcilePayment resumes it once it has asked Stripe."""
        self.store.store_charge_task_token(notification_id, task_token)
        self._record(notification_id, "AwaitChargeReconciliation", "waiting", "stripe", None, {})
        return ChargeReconciliationAwaited()

    def cancel_payment(self, notification_id: str, payment_intent_id: str, attempt: int = 0) -> CancelResult:
        """The customer never finished 3-D Secure in time: cancel, unless it succeeded at the last moment."""
        gateway = self.payment_gateway()
        self.store.clear_task_token(notification_id)
        outcome: Literal["cancelled", "already_succeeded"]
        try:
            current = gateway.retrieve(payment_intent_id)
            if current.status == "succeeded":
                outcome = "already_succeeded"
            elif current.status == "canceled":
                outcome = "cancelled"
            else:
                gateway.cancel(payment_intent_id, idempotency_key=keys.cancel_key(notification_id))
                outcome = "cancelled"
        except ProviderError as error:
            self._record(notification_id, "CancelPayment", "failed", "stripe", attempt, _error_details(error))
            raise
        self.store.set_payment_status(
            notification_id, "succeeded" if outcome == "already_succeeded" else "canceled"
        )
        self._record(
            notification_id,
            "CancelPayment",
            outcome,
            "stripe",
            attempt,
            {"payment_intent_id": payment_intent_id},
        )
        return CancelResult(outcome=outcome, payment_intent_id=payment_intent_id)

    def refund_payment(
        self,
        notification_id: str,
        reason: str | None = None,
        attempt: int = 0,
        *,
        amount: int | None = None,
        idempotency_key: str | None = None,
    ) -> RefundResult:
        """Refund the payment: the saga's compensation (all of it, under the saga's one refund key), or
        the shop's refund (``amount``, None for what remains, under a key of the shop's request), which
        records the refund itself (``tidings.api.actions``)."""
        payment_intent_id = payment_intent_of(self.store.get(notification_id))
        try:
            refund = self.payment_gateway().refund(
                payment_intent_id,
                idempotency_key=idempotency_key or keys.refund_key(notification_id),
                amount=amount,
            )
        except ProviderError as error:
            self._record(notification_id, "RefundPayment", "failed", "stripe", attempt, _error_details(error))
            raise
        shop = idempotency_key is not None
        if not shop:
            self.store.record_refund(notification_id, refund_id=refund.refund_id, refund_status=refund.status)
        self._record(
            notification_id,
            "RefundPayment",
            "refunded",
            "stripe",
            attempt,
            {
                "refund_id": refund.refund_id,
                "payment_intent_id": payment_intent_id,
                "reason": reason,
                "amount": refund.amount if shop else None,
            },
        )
        return RefundResult(refund_id=refund.refund_id, status=refund.status, amount=refund.amount)

    # --- channels -------------------------------------------------------------------------------
    def send(
        self, notification_id: str, channel: str, provider: str, attempt: int = 0, step: str | None = None
    ) -> SendResult:
        """Send the receipt e-mail or the SMS through one provider; the step name follows the provider."""
        step = step or STEP_NAMES[(channel, provider)]
        notification = self.store.get(notification_id)
        _carry_request_id(notification)
        if channel not in notification.channels:
            # Not asked for: the step runs (the state machine passes through it) and sends nothing.
            self._record(notification_id, step, "skipped", None, attempt, {"reason": NOT_REQUESTED})
            return SendResult.skip(NOT_REQUESTED)
        suppressed = self._suppression(notification, channel)
        if suppressed is not None:
            return self._skip_suppressed(notification, channel, step, attempt, *suppressed)
        if self.switched_off(provider):
            # The live configuration sends this channel through its fallback only (a provider incident).
            self._record(notification_id, step, "skipped", provider, attempt, {"reason": SWITCHED_OFF})
            raise ProviderSwitchedOff(
                f"configuration sends {channel} through {FALLBACK[channel]} only",
                provider=provider,
                code=SWITCHED_OFF,
            )
        started = time.monotonic()
        template = _template_details(notification, channel)
        try:
            message = self._message(notification, channel)
            sender = self.email_channel(provider) if channel == EMAIL else self.sms_channel(provider)
            receipt = sender.send(message)
        except ProviderError as error:
            details = _error_details(error)
            if channel == SMS and isinstance(error, InvalidRequest) and error.code == TWILIO_OPTED_OUT:
                # Twilio keeps its own opt-out list: the recipient texted STOP before we heard of it.
                entry_id = self._suppress_opted_out(notification)
                details = details | _latency(started) | {"provider": provider}
                return self._skip_suppressed(
                    notification, channel, step, attempt, "twilio_21610", entry_id, details
                )
            self._record(notification_id, step, "failed", provider, attempt, details | _latency(started))
            if isinstance(error, InvalidRequest):
                # Permanent: the other provider would refuse it too, so the saga will not fall back.
                self.store.update_channel(
                    notification_id,
                    channel,
                    ChannelStatus.REJECTED,
                    with_status={
                        "provider": provider,
                        "reason": details.get("code") or details.get("error_type"),
                    },
                )
            raise
        result = SendResult(
            provider=receipt.provider,
            provider_message_id=receipt.provider_message_id,
            deduplicated=receipt.deduplicated,
            attempts=receipt.attempts,
        )
        # Forward only: a delivery report (or a bounce) that got here first keeps its status; the
        # message's provider and id are recorded either way.
        self.store.update_channel(
            notification_id,
            channel,
            ChannelStatus.SENT,
            provider=receipt.provider,
            provider_message_id=receipt.provider_message_id,
            fallback=provider == FALLBACK[channel],
        )
        recorded = result.model_dump(mode="json") | _latency(started) | template
        if template and provider == PRIMARY[EMAIL]:
            recorded["sendgrid_template_id"] = getattr(message, "sendgrid_template_id", None)
        self._record(notification_id, step, "sent", provider, attempt, recorded)
        return result

    # --- suppressions ------------------------------------------------------------------------------
    def _suppression(self, notification: Notification, channel: str) -> tuple[str, str | None] | None:
        """(why, the entry's id) if the channel's recipient is on the suppression list."""
        service = self.suppressions()
        address = notification.recipient(channel)
        if service is None or address is None:
            return None
        entry = service.find(channel, address)  # type: ignore[arg-type]
        return (entry.reason.value, entry.suppression_id) if entry else None

    def _suppress_opted_out(self, notification: Notification) -> str | None:
        from tidings.suppressions.models import SuppressionReason, suppression_id

        service, phone = self.suppressions(), notification.customer.phone
        if service is None or phone is None:
            return None
        service.suppress("sms", phone, SuppressionReason.TWILIO_21610, "twilio")
        return suppression_id("sms", phone)

    def _skip_suppressed(
        self,
        notification: Notification,
        channel: str,
        step: str,
        attempt: int,
        reason: str,
        entry_id: str | None,
        details: dict[str, Any] | None = None,
    ) -> SendResult:
        """Nothing sent: the channel is skipped with the reason; a required one undoes the payment."""
        from aws_lambda_powertools.metrics import MetricUnit

        from tidings.observability import metrics

        notification_id = notification.notification_id
        recorded = (details or {}) | {"reason": SUPPRESSED, "suppression_reason": reason}
        recorded |= {"suppression_id": entry_id}
        self._record(notification_id, step, "skipped", recorded.pop("provider", None), attempt, recorded)
        self.store.update_channel(
            notification_id, channel, ChannelStatus.SKIPPED, with_status={"reason": f"{SUPPRESSED}:{reason}"}
        )
        metrics.add_metric(name="ChannelSuppressed", unit=MetricUnit.Count, value=1)
        if notification.channels[channel].policy == ChannelPolicy.REQUIRED:
            raise RecipientSuppressed(channel, reason)
        return SendResult.skip(SUPPRESSED)

    def _message(self, notification: Notification, channel: str) -> EmailMessage | SmsMessage:
        from tidings.providers.models import EmailMessage, SmsMessage, text_as_html

        notification_id = notification.notification_id
        customer = notification.customer
        if channel == EMAIL:
            receipt = notification.receipt
            assert receipt is not None
            assert customer.email is not None
            template: dict[str, Any] = {}
            if receipt.template_id is not None:
                rendered = _render(
                    lambda c: c.render_email(str(receipt.template_id), receipt.data, receipt.locale)
                )
                subject, text, html = rendered.subject, rendered.text, rendered.html
                if rendered.sendgrid_template_id:
                    template = {
                        "sendgrid_template_id": rendered.sendgrid_template_id,
                        "template_data": receipt.data,
                    }
            else:
                assert receipt.subject is not None
                assert receipt.text is not None
                subject, text, html = receipt.subject, receipt.text, text_as_html(receipt.text)
            return EmailMessage(
                to=customer.email,
                to_name=customer.name,
                subject=subject,
                text=text,
                html=html,
                idempotency_key=keys.send_key(notification_id, EMAIL),
                custom_args={"notification_id": notification_id, **_request_metadata(notification)},
                **template,
            )
        sms = notification.sms
        assert sms is not None
        assert customer.phone is not None
        if sms.template_id is not None:
            body = _render(lambda c: c.render_sms(str(sms.template_id), sms.data, sms.locale)).text
        else:
            assert sms.text is not None
            body = sms.text
        return SmsMessage(
            to=customer.phone,
            body=body,
            idempotency_key=keys.send_key(notification_id, SMS),
            status_callback_url=_with_request_id(self.status_callback_url(notification_id), notification),
        )

    # --- the end --------------------------------------------------------------------------------
    def record_outcome(self, state: OutcomeInput) -> OutcomeResult:
        """Decide and record the notification's one final status from what the steps wrote."""
        notification_id = state.notification_id
        notification = self.store.get(notification_id)
        recorded = notification.channels
        outcome = decide(state, {name: channel.status for name, channel in recorded.items()})
        for name, channel in outcome.channels.items():
            current = recorded.get(name)
            rank = CHANNEL_STATUS_RANK[channel.status]
            if current is not None and CHANNEL_STATUS_RANK[current.status] >= rank:
                # The same status: the step that set it wrote the richer record (provider, reason code).
                # Further on (a delivery webhook's delivered over the step's sent): the forward-only write
                # would be kept anyway, after a wasted write and a read to tell kept from missing.
                continue
            # Forward only: a status a step or webhook moves further meanwhile (sent, delivered, an early
            # bounce's rejected) is kept by the write's own condition.
            reason = {"reason": channel.reason} if channel.reason else {}
            self.store.update_channel(notification_id, name, channel.status, with_status=reason)
        self.store.finish(notification_id, outcome.status, outcome.reason)
        self._record(notification_id, "RecordOutcome", outcome.status, None, None, {"reason": outcome.reason})
        return OutcomeResult(notification_id=notification_id, status=outcome.status, reason=outcome.reason)

    # --- timeline -------------------------------------------------------------------------------
    def record_event(
        self,
        notification_id: str,
        step: str,
        outcome: str,
        provider: str | None = None,
        attempt: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self._record(notification_id, step, outcome, provider, attempt, details or {})

    def _record(
        self,
        notification_id: str,
        step: str,
        outcome: str,
        provider: str | None,
        attempt: int | None,
        details: dict[str, Any],
    ) -> None:
        event = TimelineEvent(
            step=step,
            outcome=outcome,
            at=self.store.now(),
            provider=provider,
            # The state machine counts retries from 0; people count attempts from 1.
            attempt=None if attempt is None else attempt + 1,
            details={key: value for key, value in details.items() if value is not None},
        )
        self.store.add_event(notification_id, event)


@lru_cache(maxsize=1)
def get_steps() -> SagaSteps:
    """The steps wired to the real table and providers, built once per container."""
    from tidings import providers
    from tidings.saga.settings import step_settings

    return SagaSteps(
        store=get_store(),
        payment_gateway=providers.get_payment_gateway,
        email_channel=providers.get_email_channel,
        sms_channel=providers.get_sms_channel,
        status_callback_url=step_settings().status_callback_url,
        suppressions=lru_cache(maxsize=1)(_suppression_service),
        switched_off=providers.switched_off,
    )


def _suppression_service() -> SuppressionService:
    from tidings.suppressions.service import get_suppression_service

    return get_suppression_service()


def _render(render: Callable[[Any], Any]) -> Any:
    """A template rendered from the layer's catalogue; one the API accepted that no longer renders (a
    deployment removed it meanwhile) is a permanent refusal: the other provider could not send it either."""
    from tidings.templates.catalog import get_catalog
    from tidings.templates.errors import TemplateProblem

    try:
        return render(get_catalog())
    except TemplateProblem as problem:
        raise InvalidRequest(
            "the template cannot be rendered", provider="tidings", code=problem.code, field="template_id"
        ) from None


def _template_details(notification: Notification, channel: str) -> dict[str, Any]:
    """The template and locale asked for, for the timeline (ids only, never the data)."""
    content = notification.receipt if channel == EMAIL else notification.sms
    if content is None or content.template_id is None:
        return {}
    return {"template_id": content.template_id, "locale": content.locale}


def _carry_request_id(notification: Notification) -> None:
    """The API call's request id on every log line of this step, as ``api_request_id`` (``request_id``
    is the provider's own in the provider call lines); None removes a previous one."""
    logger.append_keys(api_request_id=notification.request_id)


def _with_request_id(callback_url: str | None, notification: Notification) -> str | None:
    """Twilio takes no metadata on a message: the request id rides in the StatusCallback URL's query
    (``&request_id=``, beside ``notification_id``), and its delivery reports bring it back."""
    if not callback_url or not notification.request_id:
        return callback_url
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(callback_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "request_id"]
    query.append(("request_id", notification.request_id))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _request_metadata(notification: Notification) -> dict[str, str]:
    """The request id as provider metadata (Stripe metadata, SendGrid custom_args; Twilio's is in the
    StatusCallback URL, :func:`_with_request_id`), when there is one."""
    return {"request_id": notification.request_id} if notification.request_id else {}
