"""(a) What the provider clients send, and (b) what the sandboxes answer them, against the providers' own
descriptions: every request the Stripe, SendGrid and Twilio clients and the key rotation make, recorded
on the wire, in success, decline, validation-error and fault paths.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from provider_contracts import exchange_problems, operation_name, pretty

from tidings import errors
from tidings.providers.models import ChargeRequest, EmailMessage, SmsMessage
from tidings.providers.sendgrid import sendgrid_error
from tidings.providers.twilio import twilio_error
from tidings.rotation.providers import ProviderApi, SendGridKeyRotation, TwilioKeyRotation
from tidings_local.sandboxes import credentials

pytestmark = [
    pytest.mark.integration,
    pytest.mark.contract,
    pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left"),
]

LAYER = Path(__file__).parents[2] / "layers" / "tidings" / "tidings"

#: Every provider operation Tidings calls, as the contract checks name them.
CLIENT_OPERATIONS = {
    "stripe payment_intents.create",
    "stripe payment_intents.retrieve",
    "stripe payment_intents.list",
    "stripe payment_intents.cancel",
    "stripe refunds.create",
    "stripe charges.retrieve",
    "stripe events.list",
    "sendgrid SendMail",
    "twilio CreateMessage",
    "twilio FetchMessage",
}
ROTATION_OPERATIONS = {
    "twilio CreateNewKey",
    "twilio FetchAccount",
    "twilio DeleteKey",
    "sendgrid CreateApiKey",
    "sendgrid ListScope",
    "sendgrid DeleteApiKey",
}


def charge(payment_method: str, key: str, **extra) -> ChargeRequest:
    return ChargeRequest(
        amount=2599,
        currency="GBP",
        payment_method=payment_method,
        description="Order 1001",
        metadata={"order_reference": "order-1001", "notification_id": "n-1"},
        idempotency_key=key,
        receipt_email="ada@example.com",
        **extra,
    )


def operations(recorder) -> set[str]:
    return {operation_name(r.request) for r in recorder.exchanges}


def statuses(recorder, operation: str) -> list[int]:
    return [r.status_code for r in recorder.exchanges if operation_name(r.request) == operation]


def test_the_client_operations_listed_are_every_one_the_layer_calls():
    # The endpoint names the provider clients pass to the HTTP path, read from their source: a new
    # operation must be added here (and so get a contract check) before it can pass.
    names = set()
    for module in ("stripe", "sendgrid", "twilio"):
        source = (LAYER / "providers" / f"{module}.py").read_text()
        names |= {f"{module} {n}" for n in re.findall(r'endpoint="([^"]+)"', source)}
    as_called = {
        "sendgrid mail.send": "sendgrid SendMail",
        "twilio messages.create": "twilio CreateMessage",
        "twilio messages.fetch": "twilio FetchMessage",
    }
    assert {as_called.get(n, n) for n in names} == CLIENT_OPERATIONS
    rotation = (LAYER / "rotation" / "providers.py").read_text()
    assert len(re.findall(r"self\.api\.call\(", rotation)) == len(ROTATION_OPERATIONS)


def test_stripe_client_requests_and_the_answers_match_stripe(container, recorder, sandbox):
    gateway = container.payment_gateway()
    sandbox["stripe"].control.pause_webhooks()  # its events stay undelivered, for the events list
    # a charge that succeeds, is read back and refunded in two parts
    paid = gateway.charge(charge("pm_card_visa", "charge-1"))
    assert paid.status == "succeeded"
    assert gateway.retrieve(paid.payment_intent_id).status == "succeeded"
    # looked up by the metadata the layer sends, in a creation window (found, and not found)
    found = gateway.find_by_metadata("notification_id", "n-1", created_from=0)
    assert found is not None
    assert found.payment_intent_id == paid.payment_intent_id
    assert gateway.find_by_metadata("notification_id", "n-none", created_from=0, created_to=2**31) is None
    gateway.refund(paid.payment_intent_id, "refund-1", amount=599)
    # what remains to refund, as Stripe holds it (the intent and its charge)
    refundable = gateway.refundable(paid.payment_intent_id)
    assert (refundable.amount, refundable.amount_refunded, refundable.remaining) == (2599, 599, 2000)
    gateway.refund(paid.payment_intent_id, "refund-2")
    # the events no endpoint acknowledged (webhooks are paused: none is delivered)
    undelivered = list(gateway.undelivered_events(0, 2**31))
    assert "payment_intent.succeeded" in {event["type"] for event in undelivered}
    # a charge waiting for 3-D Secure, then cancelled
    waiting = gateway.charge(charge("pm_card_threeDSecure2Required", "charge-2"))
    assert waiting.status == "requires_action"
    assert waiting.next_action_url
    gateway.cancel(waiting.payment_intent_id, "cancel-1")
    # a decline, a refund Stripe refuses (nothing left to refund), and one not found
    with pytest.raises(errors.PaymentDeclined):
        gateway.charge(charge("pm_card_chargeDeclinedInsufficientFunds", "charge-3"))
    with pytest.raises(errors.ProviderError):
        gateway.refund(paid.payment_intent_id, "refund-3")
    with pytest.raises(errors.ProviderError):
        gateway.retrieve("pi_doesnotexist")
    # faults: a 429 with Retry-After and a 500, each waited out on the fake clock
    stripe = sandbox["stripe"].control
    stripe.inject_fault("status", status=429, retry_after=1, count=1, path_prefix="/v1/payment_intents")
    stripe.inject_fault("status", status=500, count=1, path_prefix="/v1/payment_intents")
    assert gateway.charge(charge("pm_card_visa", "charge-4")).status == "succeeded"
    # a key Stripe does not know
    sandbox["stripe"].control.set_credentials(api_key="sk_test_someone_else")
    with pytest.raises(errors.ProviderError):
        gateway.retrieve(paid.payment_intent_id)

    assert CLIENT_OPERATIONS & {o for o in operations(recorder) if o.startswith("stripe")} == {
        o for o in CLIENT_OPERATIONS if o.startswith("stripe")
    }
    assert {402, 400, 404, 429, 500, 401} <= {r.status_code for r in recorder.exchanges}
    assert exchange_problems(recorder.exchanges) == {}, pretty(exchange_problems(recorder.exchanges))


def test_sendgrid_client_requests_and_the_answers_match_sendgrid(container, recorder, sandbox):
    channel = container.email_channel("sendgrid")
    receipt = EmailMessage(
        to="ada@example.com",
        to_name="Ada Lovelace",
        subject="Your receipt for order-1001",
        text="Thank you for your order.",
        html="<p>Thank you for your order.</p>",
        idempotency_key="receipt-1",
        custom_args={"notification_id": "n-1"},
    )
    assert channel.send(receipt).provider_message_id
    plain = EmailMessage(to="bob@example.com", subject="Receipt", text="Thanks", idempotency_key="receipt-2")
    channel.send(plain)
    # a templated receipt: SendGrid's dynamic template and its data instead of the content
    control = sandbox["sendgrid"].control
    template_id = "d-" + "5" * 32
    control.put_template(
        template_id, {"versions": [{"name": "v1", "subject": "{{{o}}}", "html_content": "{{o}}"}]}
    )
    templated = EmailMessage(
        to="ann@example.com",
        subject="Receipt o-1",
        text="o-1",
        html="o-1",
        idempotency_key="receipt-3",
        sendgrid_template_id=template_id,
        template_data={"o": "o-1"},
    )
    assert channel.send(templated).provider_message_id
    mail = control.state()["mails"][-1]
    assert mail["template_id"] == template_id
    assert mail["rendered"][0]["subject"] == "o-1"
    assert mail["content"] == {}  # no raw content beside the template
    # faults: 429 then 500, then success
    control.inject_fault("status", status=429, retry_after=1, count=1, path_prefix="/v3/mail/send")
    control.inject_fault("status", status=500, count=1, path_prefix="/v3/mail/send")
    channel.send(EmailMessage(to="eve@example.com", subject="R", text="T", idempotency_key="receipt-4"))
    # a key SendGrid does not know
    control.set_credentials(api_key="SG.other.key")
    with pytest.raises(errors.ProviderError):
        channel.send(EmailMessage(to="joe@example.com", subject="R", text="T", idempotency_key="receipt-5"))

    assert statuses(recorder, "sendgrid SendMail")[:3] == [202, 202, 202]
    assert {401, 429, 500} <= set(statuses(recorder, "sendgrid SendMail"))
    assert exchange_problems(recorder.exchanges) == {}, pretty(exchange_problems(recorder.exchanges))


def test_twilio_client_requests_and_the_answers_match_twilio(container, recorder, sandbox, receiver):
    channel = container.sms_channel("twilio")
    callback = receiver.url + "/twilio/status?notification_id=n-1"
    sms = SmsMessage(
        to="+447700900123", body="Paid, thanks", idempotency_key="sms-1", status_callback_url=callback
    )
    sid = channel.send(sms).provider_message_id
    assert sid.startswith("SM")
    channel.send(SmsMessage(to="+447700900124", body="No callback", idempotency_key="sms-2"))
    # what the reconciliation sweeper asks of a message still sent
    sandbox["twilio"].control.wait_for_webhooks()
    assert container.twilio_messages().message_status(sid) == ("delivered", None)
    # a number Twilio refuses (its magic invalid 'To')
    with pytest.raises(errors.InvalidRequest):
        channel.send(SmsMessage(to="+15005550001", body="x", idempotency_key="sms-3"))
    control = sandbox["twilio"].control
    control.inject_fault("status", status=429, retry_after=1, count=1)
    control.inject_fault("status", status=503, count=1)
    channel.send(SmsMessage(to="+447700900125", body="After faults", idempotency_key="sms-4"))
    control.set_credentials(api_key_secret="another-secret")
    with pytest.raises(errors.ProviderError):
        channel.send(SmsMessage(to="+447700900126", body="Refused", idempotency_key="sms-5"))

    assert statuses(recorder, "twilio CreateMessage")[:2] == [201, 201]
    assert {400, 401, 429, 503} <= set(statuses(recorder, "twilio CreateMessage"))
    assert exchange_problems(recorder.exchanges) == {}, pretty(exchange_problems(recorder.exchanges))


def test_key_rotation_requests_and_the_answers_match_twilio_and_sendgrid(sandbox, recorder):
    timeout = httpx.Timeout(5.0)
    twilio_api = ProviderApi(
        "twilio", sandbox["twilio"].base_url, recorder.client, twilio_error, timeout=timeout
    )
    sendgrid_api = ProviderApi(
        "sendgrid", sandbox["sendgrid"].base_url, recorder.client, sendgrid_error, timeout=timeout
    )
    twilio = TwilioKeyRotation(twilio_api, key_name_prefix="tidings", clock=lambda: 1_700_000_000)
    current = {
        "account_sid": credentials.TWILIO_ACCOUNT_SID,
        "auth_token": credentials.TWILIO_AUTH_TOKEN,
        "api_key_sid": credentials.TWILIO_API_KEY_SID,
        "api_key_secret": credentials.TWILIO_API_KEY_SECRET,
        "from_number": credentials.TWILIO_FROM_NUMBER,
    }
    pending = twilio.create(current, "token-twilio-1")
    twilio.test(pending)
    twilio.retire(current, pending)
    twilio.retire(current, pending)  # already deleted: Twilio's 404
    with pytest.raises(errors.AuthenticationFailed):
        twilio.test(current)  # the deleted key no longer authenticates

    sendgrid = SendGridKeyRotation(
        sendgrid_api,
        scopes=["mail.send", "api_keys.delete", "scopes.read"],
        key_name_prefix="tidings",
        clock=lambda: 1_700_000_000,
    )
    current_sg = {"api_key": credentials.SENDGRID_API_KEY}
    pending_sg = sendgrid.create(current_sg, "token-sendgrid-1")
    sendgrid.test(pending_sg)
    sendgrid.retire(current_sg, pending_sg)
    sendgrid.retire(current_sg, pending_sg)  # already deleted: SendGrid's 404 (the caller's key is gone too)

    assert operations(recorder) >= ROTATION_OPERATIONS
    assert exchange_problems(recorder.exchanges) == {}, pretty(exchange_problems(recorder.exchanges))
