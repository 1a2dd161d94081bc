"""Channel choice and the suppression list on the whole local system: a STOP texted to Twilio, then a
notification to that number; a required channel that is suppressed; the operator's routes and scope."""

import random
import time

import boto3
import pytest
from support.e2e import WAIT_SECONDS, History, api_post, order_body

from tidings.audit import AuditLog
from tidings.suppressions.models import suppression_id

pytestmark = pytest.mark.e2e

OPS = "tidings/ops"


def a_phone() -> str:
    """A number of its own per test: the suppression list outlives the sandboxes' reset."""
    return f"+4477009{random.randrange(10**5):05d}"


def sms_requests(system, to: str) -> list[dict]:
    """Messages the Twilio sandbox was asked to send to ``to`` (other tests' sagas may still be texting)."""
    return [
        request
        for request in system.sandboxes["twilio"].control.requests()
        if request["path"].endswith("/Messages.json") and (request.get("form") or {}).get("To") == to
    ]


def wait_until_suppressed(saga, channel: str, address: str) -> dict:
    """The entry, as the operator's route lists it (the opt-out is written before Twilio gets its 200)."""
    wanted = suppression_id(channel, address)
    headers = {"Authorization": f"Bearer {saga.system.token(scope=OPS)}"}
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        page = saga.http.get("/suppressions", params={"channel": channel, "limit": 100}, headers=headers)
        assert page.status_code == 200, page.text
        found = [item for item in page.json()["items"] if item["suppression_id"] == wanted]
        cursor = page.json()["next_cursor"]
        while not found and cursor:
            more = saga.http.get("/suppressions", params={"cursor": cursor, "limit": 100}, headers=headers)
            found = [item for item in more.json()["items"] if item["suppression_id"] == wanted]
            cursor = more.json()["next_cursor"]
        if found:
            return found[0]
        assert time.monotonic() < deadline, "the opt-out never reached the suppression list"
        time.sleep(0.2)


def test_stop_from_a_phone_then_a_new_notification_to_it_sends_no_sms_and_the_timeline_says_why(system, saga):
    # Given the customer texted STOP to the shop's Twilio number
    phone = a_phone()
    twilio = system.sandboxes["twilio"].control
    # The receiver's cold start first (a refused delivery): the sandbox, like Twilio, waits seconds only
    api_post(f"{system.api_url}/webhooks/stripe", content=b"{}")
    twilio.inbound_sms(phone, "STOP", url=f"{system.api_url}/webhooks/twilio")
    [delivery] = twilio.wait_for_webhooks(1, timeout=WAIT_SECONDS)
    assert delivery["delivered"], delivery
    entry = wait_until_suppressed(saga, "sms", phone)
    assert (entry["reason"], entry["source"]) == ("opt_out", "twilio")
    assert phone not in str(entry)
    # And the receiver put the change into the audit log, by suppression id, as Twilio's signal
    dynamodb = boto3.resource(
        "dynamodb",
        endpoint_url=system.moto_url,
        region_name=system.boto3_client("dynamodb").meta.region_name,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    audit = AuditLog(lambda: dynamodb.Table(system.physical_id("AuditTable")))
    [record] = audit.by_target("suppression", entry["suppression_id"])
    assert (record.action, record.actor, record.subject) == ("suppression.added", "system", "system:twilio")
    assert phone not in record.model_dump_json()
    # When a new notification is sent to that number
    twilio.clear_requests()
    result = saga.run(order_body(customer={"phone": phone}))
    # Then Twilio is never asked to send it, the receipt still goes, and the timeline says why
    assert sms_requests(system, phone) == []
    assert (result["status"], result["status_reason"]) == ("delivered", "sms:suppressed")
    assert result["channels"]["email"]["status"] in {"sent", "delivered"}
    sms = result["channels"]["sms"]
    assert (sms["status"], sms["reason"]) == ("skipped", "suppressed:opt_out")
    [skipped] = [event for event in result["timeline"] if event["step"] == "SendSms"]
    assert skipped["outcome"] == "skipped"
    assert (skipped["details"]["reason"], skipped["details"]["suppression_reason"]) == (
        "suppressed",
        "opt_out",
    )
    # And the saga took the happy path's states, no fallback and no refund
    history = History(system.boto3_client("stepfunctions"), result["execution_arn"])
    assert "SendSmsViaSns" not in history.entered
    assert "RefundPayment" not in history.entered


def test_a_required_suppressed_channel_is_refused_with_422_before_any_charge(system, saga):
    # Given an operator suppressed the customer's number (an ops-scoped route; a client token may not)
    phone = a_phone()
    ops = {"Authorization": f"Bearer {system.token(scope=OPS)}"}
    body = {"channel": "sms", "address": phone, "note": "asked by phone"}
    assert saga.http.post("/suppressions", json=body, headers=saga.headers()).status_code == 403
    added = saga.http.post("/suppressions", json=body, headers=ops)
    assert added.status_code == 201, added.text
    assert added.json()["address"] != phone
    stripe = system.sandboxes["stripe"].control
    stripe.clear_requests()
    # When the shop asks for a required SMS to it
    response = saga.notify(order_body(customer={"phone": phone}, delivery_policy={"sms": "required"}))
    # Then it is refused, clearly, and nothing is charged
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "recipient_suppressed"
    assert response.json()["channel"] == "sms"
    assert phone not in response.text
    assert stripe.requests("/v1/payment_intents") == []
    # And once the operator lifts it, the same request goes through
    lifted = saga.http.delete(f"/suppressions/{added.json()['suppression_id']}", headers=ops)
    assert lifted.status_code == 200
    again = saga.notify(order_body(customer={"phone": phone}, delivery_policy={"sms": "required"}))
    assert again.status_code == 202, again.text


def test_an_email_only_notification_never_texts_and_is_delivered(system, saga):
    body = order_body()
    del body["sms"]
    body["customer"] = {"name": "Ada Lovelace", "email": "ada@example.com"}
    result = saga.run(body)
    assert (result["status"], result["status_reason"]) == ("delivered", None)
    assert set(result["channels"]) == {"email"}
    # The SMS step ran (the e-mail's branch leads to it) and sent nothing
    [sms] = [event for event in result["timeline"] if event["step"] == "SendSms"]
    assert (sms["outcome"], sms["details"]["reason"]) == ("skipped", "not_requested")
    assert "provider" not in sms


def test_a_payment_alone_goes_from_the_charge_to_the_outcome(system, saga):
    body = order_body()
    del body["sms"], body["receipt"]
    body["customer"] = {"name": "Ada Lovelace"}
    result = saga.run(body)
    assert (result["status"], result["channels"]) == ("delivered", {})
    history = History(system.boto3_client("stepfunctions"), result["execution_arn"])
    assert history.entered == [
        "ChargePayment",
        "CheckPaymentStatus",
        "RecordOutcome",
        "CheckOutcome",
        "NotificationFinished",
    ]


def test_a_spam_report_at_sendgrid_suppresses_the_address_for_the_next_notification(system, saga):
    # Given the customer reports the receipt as spam (the SendGrid sandbox's event webhook says so)
    email = f"ada-{random.randrange(10**9)}@example.com"
    system.sandboxes["sendgrid"].control.add_bounce(email, event="spamreport")
    first = saga.run(order_body(customer={"email": email}))
    assert first["status"] in {"delivered", "delivered_with_fallback", "partially_delivered"}
    # Then the address is on the list, from SendGrid, for that reason
    entry = wait_until_suppressed(saga, "email", email)
    assert (entry["reason"], entry["source"]) == ("spamreport", "sendgrid")
    # And a notification that requires the receipt is refused before any charge
    refused = saga.notify(order_body(customer={"email": email}, delivery_policy={"email": "required"}))
    assert refused.status_code == 422, refused.text
    assert (refused.json()["code"], refused.json()["channel"]) == ("recipient_suppressed", "email")
