"""Webhooks through the whole local system: real HTTP to the local API, signatures, SQS, the processor.

Runs on the session's LocalSystem (tests/e2e/conftest.py). Deliveries the sandboxes send are signed by
them; deliveries the tests send are signed here from the providers' documented schemes and the documented
local credentials, independently of the receiver's verifiers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from support.e2e import History, api_post, order_body
from support.template import create_table

from tidings_local.sandboxes import credentials

pytestmark = pytest.mark.e2e


# --- signing, as the providers document it --------------------------------------------------------------


def stripe_headers(body: bytes) -> dict[str, str]:
    t = int(time.time())
    v1 = hmac.new(credentials.STRIPE_WEBHOOK_SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256)
    return {"Content-Type": "application/json", "Stripe-Signature": f"t={t},v1={v1.hexdigest()}"}


def sendgrid_headers(body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    key = serialization.load_pem_private_key(credentials.SENDGRID_WEBHOOK_PRIVATE_KEY_PEM.encode(), None)
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


def twilio_headers(url: str, params: dict[str, str]) -> dict[str, str]:
    data = url + "".join(name + params[name] for name in sorted(params))
    mac = hmac.new(credentials.TWILIO_AUTH_TOKEN.encode(), data.encode(), hashlib.sha1).digest()
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": base64.b64encode(mac).decode(),
    }


def post_twilio_status(system, notification_id: str, sid: str, status: str) -> httpx.Response:
    url = f"{system.api_url}/webhooks/twilio?notification_id={notification_id}"
    params = {
        "MessageSid": sid,
        "MessageStatus": status,
        "AccountSid": credentials.TWILIO_ACCOUNT_SID,
        "To": "+447700900123",
        "ErrorCode": "",
    }
    return api_post(url, content=urlencode(params), headers=twilio_headers(url, params))


# --- waiting on the asynchronous side -------------------------------------------------------------------


def eventually(probe, timeout: float = 60, what: str = "condition"):
    """Poll ``probe`` until it returns something truthy (the processor runs behind a queue)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s")
        time.sleep(0.2)


def webhook_entries(saga, notification_id: str, step: str) -> list[dict]:
    return [e for e in saga.status(notification_id)["timeline"] if e["step"] == step]


def queue_drained(system) -> bool:
    attributes = system.boto3_client("sqs").get_queue_attributes(
        QueueUrl=system.physical_id("WebhookQueue"),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return all(value == "0" for value in attributes.values())


@pytest.fixture
def warm_webhooks(system):
    """Cold-start the webhook functions once: the processor takes an event of no notification without a
    failure, and the receiver answers (a refusal: only warming it)."""
    probe = {
        "provider": "twilio",
        "event_id": f"warm-{uuid.uuid4().hex}",
        "kind": "sent",
        "channel": "sms",
        "notification_id": None,
        "received_at": time.time(),
    }
    record = {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "warm",
        "body": json.dumps(probe),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
    }
    assert not system.invoke("WebhookProcessorFunction", {"Records": [record]}).failed
    api_post(f"{system.api_url}/webhooks/stripe", content=b"{}")  # refused: only warms the receiver


# --- 3-D Secure ------------------------------------------------------------------------------------------


def test_3ds_webhook_resumes_the_saga_once_however_often_it_is_delivered(system, saga, warm_webhooks):
    # Given a payment waiting for 3-D Secure
    accepted = saga.notify(order_body(payment={"payment_method": "pm_card_threeDSecure2Required"})).json()
    notification_id = accepted["notification_id"]
    waiting = saga.wait_for(notification_id, {"awaiting_payment_action"})
    stripe = system.sandboxes["stripe"]
    # When the customer completes the challenge and the sandbox sends Stripe's signed webhook
    stripe.control.complete_action(waiting["payment"]["payment_intent_id"], "succeeded")
    result = saga.wait_for(notification_id)
    # Then the saga resumed, delivered, and the webhook is in the timeline
    assert result["status"] == "delivered"
    [entry] = webhook_entries(saga, notification_id, "WebhookStripe")
    assert entry["outcome"] == "payment_intent.succeeded"
    assert entry["details"]["provider_object_id"] == waiting["payment"]["payment_intent_id"]
    [delivery] = [d for d in stripe.control.webhook_deliveries() if '"payment_intent.succeeded"' in d["body"]]
    assert delivery["delivered"]
    assert delivery["attempts"][-1]["status"] == 200

    # When Stripe delivers the very same event again, five times at once and once more after
    def redeliver(_):
        return api_post(
            f"{system.api_url}/webhooks/stripe",
            content=delivery["body"].encode(),
            headers=delivery["headers"],
        ).status_code

    with ThreadPoolExecutor(max_workers=5) as pool:
        assert list(pool.map(redeliver, range(5))) == [200] * 5
    assert redeliver(None) == 200
    eventually(lambda: queue_drained(system), what="webhook queue drained")
    # Then each was acknowledged, and none had a second effect
    assert len(webhook_entries(saga, notification_id, "WebhookStripe")) == 1
    history = History(system.boto3_client("stepfunctions"), result["execution_arn"])
    wait_resumed = [
        e
        for e in history.events
        if e["type"] == "TaskSucceeded"
        and "waitForTaskToken" in e.get("taskSucceededEventDetails", {}).get("resource", "")
    ]
    assert len(wait_resumed) == 1
    assert history.entered.count("WaitForPaymentAction") == 1
    assert len([r for r in stripe.control.requests("/v1/payment_intents") if r["method"] == "POST"]) == 1


def test_3ds_challenge_failed_webhook_ends_the_saga_declined(system, saga, warm_webhooks):
    accepted = saga.notify(order_body(payment={"payment_method": "pm_card_threeDSecure2Required"})).json()
    notification_id = accepted["notification_id"]
    waiting = saga.wait_for(notification_id, {"awaiting_payment_action"})
    system.sandboxes["stripe"].control.complete_action(waiting["payment"]["payment_intent_id"], "failed")
    result = saga.wait_for(notification_id)
    assert (result["status"], result["status_reason"]) == ("payment_declined", "payment_action_failed")
    [entry] = webhook_entries(saga, notification_id, "WebhookStripe")
    assert entry["outcome"] == "payment_intent.payment_failed"


# --- refusals --------------------------------------------------------------------------------------------


def test_forged_webhooks_are_refused_over_http_and_nothing_is_queued(system, saga):
    body = json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex[:16]}",
            "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi_forged", "metadata": {}}},
        }
    ).encode()
    genuine = stripe_headers(body)
    forged = [
        (body.replace(b"pi_forged", b"pi_other"), genuine),  # tampered body
        (
            body,
            {**genuine, "Stripe-Signature": genuine["Stripe-Signature"].replace("t=", "t=1")},
        ),  # timestamp
        (body, {"Content-Type": "application/json"}),  # missing header
        (b"", genuine),  # empty body
    ]
    for content, headers in forged:
        response = api_post(f"{system.api_url}/webhooks/stripe", content=content, headers=headers)
        assert response.status_code == 400
        assert response.json() == {"message": "invalid signature"}
    # A Twilio signature made for another URL
    url = f"{system.api_url}/webhooks/twilio?notification_id=n-1"
    params = {"MessageSid": "SMforged", "MessageStatus": "delivered"}
    headers = twilio_headers("https://evil.example.com/webhooks/twilio?notification_id=n-1", params)
    assert api_post(url, content=urlencode(params), headers=headers).status_code == 400
    assert queue_drained(system)


# --- delivery status -------------------------------------------------------------------------------------


def test_delivery_events_out_of_order_leave_the_final_status_right(system, saga):
    # Given a delivered notification
    result = saga.run(order_body())
    notification_id = result["notification_id"]
    sms_sid = result["channels"]["sms"]["provider_message_id"]
    # When Twilio's status callbacks arrive out of order: delivered first, then sent, then queued
    for status in ["delivered", "sent", "queued"]:
        assert post_twilio_status(system, notification_id, sms_sid, status).status_code == 200
    # And SendGrid's late "processed" arrives after its "delivered"
    sendgrid_message_id = result["channels"]["email"]["provider_message_id"]
    eventually(
        lambda: any(
            e["outcome"] == "delivered" for e in webhook_entries(saga, notification_id, "WebhookSendgrid")
        ),
        what="the sandbox's SendGrid delivered event processed",
    )
    late = json.dumps(
        [
            {
                "email": "ada@example.com",
                "event": "processed",
                "sg_event_id": uuid.uuid4().hex,
                "sg_message_id": f"{sendgrid_message_id}.filter0001",
                "timestamp": int(time.time()),
                "notification_id": notification_id,
            }
        ]
    ).encode()
    assert api_post(
        f"{system.api_url}/webhooks/sendgrid", content=late, headers=sendgrid_headers(late)
    ).is_success
    # Then every report is in the timeline, and the statuses did not move backwards
    eventually(lambda: len(webhook_entries(saga, notification_id, "WebhookTwilio")) == 3, what="3 callbacks")
    eventually(lambda: queue_drained(system), what="webhook queue drained")
    channels = saga.status(notification_id)["channels"]
    assert channels["sms"]["delivery_status"] == "delivered"
    assert channels["email"]["delivery_status"] == "delivered"
    assert saga.status(notification_id)["status"] == "delivered"


# --- a failing processor ---------------------------------------------------------------------------------


class DedupeTableOutage:
    """The processor's dedupe table disappears, so every processing attempt fails, and the webhook
    queue retries after one second instead of 180. ``end()`` brings the table back; both are restored
    after the test whatever happens."""

    def __init__(self, system) -> None:
        self.dynamodb, self.sqs = system.boto3_client("dynamodb"), system.boto3_client("sqs")
        self.table = system.physical_id("WebhookEventsTable")
        self.queue = system.physical_id("WebhookQueue")
        self.visibility = self.sqs.get_queue_attributes(
            QueueUrl=self.queue, AttributeNames=["VisibilityTimeout"]
        )["Attributes"]["VisibilityTimeout"]

    def shorten_retries(self) -> None:
        # Set well before the outage: a receive applies the visibility the queue had when it began.
        self.sqs.set_queue_attributes(QueueUrl=self.queue, Attributes={"VisibilityTimeout": "1"})

    def begin(self) -> None:
        self.dynamodb.delete_table(TableName=self.table)

    def end(self) -> None:
        if self.table not in self.dynamodb.list_tables()["TableNames"]:
            create_table(self.dynamodb, "WebhookEventsTable", self.table)

    def restore(self) -> None:
        self.end()
        self.sqs.set_queue_attributes(QueueUrl=self.queue, Attributes={"VisibilityTimeout": self.visibility})


@pytest.fixture
def processor_faults(system):
    outage = DedupeTableOutage(system)
    outage.shorten_retries()
    yield outage
    outage.restore()


def dead_lettered(system) -> list[dict]:
    sqs = system.boto3_client("sqs")
    answer = sqs.receive_message(
        QueueUrl=system.physical_id("WebhookDeadLetterQueue"), MaxNumberOfMessages=10, VisibilityTimeout=0
    )
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


def test_a_failing_processor_never_costs_the_acknowledgement(system, saga, processor_faults, capsys):
    result = saga.run(order_body())
    notification_id = result["notification_id"]
    sms_sid = result["channels"]["sms"]["provider_message_id"]
    eventually(lambda: queue_drained(system), what="webhook queue drained")
    processor_faults.begin()

    # Given a processor that fails every time: an event is still acknowledged, and ends in the DLQ
    lost_sid = f"SM{uuid.uuid4().hex}"
    assert post_twilio_status(system, f"n-{uuid.uuid4().hex}", lost_sid, "delivered").status_code == 200
    parked = eventually(
        lambda: [m for m in dead_lettered(system) if m["event_id"] == f"{lost_sid}:delivered"],
        what="the event in the DLQ",
    )
    assert "7700900123" not in json.dumps(parked)  # no phone number in the DLQ body

    # When a real report on this notification's SMS arrives while processing still fails, it is
    # acknowledged at once. ("undelivered": a report the Twilio sandbox never sends for this number, so
    # its own status callbacks, correlated when the local system sets PublicApiBaseUrl, cannot be
    # mistaken for it; the SMS is best_effort, so nothing is compensated.)
    def undelivered_entries() -> list[dict]:
        entries = webhook_entries(saga, notification_id, "WebhookTwilio")
        return [entry for entry in entries if entry["outcome"] == "undelivered"]

    capsys.readouterr()
    assert post_twilio_status(system, notification_id, sms_sid, "undelivered").status_code == 200
    seen: list[str] = []
    eventually(
        lambda: seen.append(capsys.readouterr().err) or "webhook processing failed" in "".join(seen),
        what="a failed processing attempt",
    )
    assert undelivered_entries() == []
    # And once the cause is fixed, the queue's redelivery applies it
    processor_faults.end()
    eventually(undelivered_entries, what="the redelivered event")
    sms = saga.status(notification_id)["channels"]["sms"]
    assert (sms["delivery_status"], sms["status"]) == ("undelivered", "rejected")
    assert not [m for m in dead_lettered(system) if m["event_id"] == f"{sms_sid}:undelivered"]


# --- compensation ----------------------------------------------------------------------------------------


def test_hard_bounce_on_a_required_receipt_refunds_once_after_the_saga_ends(system, saga, processor_faults):
    # Given a required receipt e-mail to an address that will hard-bounce after SendGrid accepted it
    # (processor_faults only shortens the queue's retry delay here: the table stays up)
    address = f"bounce-{uuid.uuid4().hex[:8]}@example.com"
    system.sandboxes["sendgrid"].control.add_bounce(address, "bounce")
    body = order_body(
        customer={"email": address},
        delivery_policy={"email": "required", "sms": "best_effort"},
    )
    accepted = saga.notify(body).json()
    notification_id = accepted["notification_id"]
    # When the bounce webhook arrives (before or after the saga has finished)
    result = eventually(
        lambda: (current := saga.status(notification_id))["status"] == "compensated" and current,
        # a deadline for a busy machine, not what the test measures: the saga, the bounce webhook and
        # the refund after it take about 20 s alone and went past 60 s once on two loaded cores
        timeout=180,
        what="compensated",
    )
    # Then the payment was refunded once, the e-mail channel failed, and the bounce is in the timeline
    assert result["channels"]["email"]["status"] == "failed"
    assert result["channels"]["email"]["delivery_status"] == "bounced"
    refunds = [r for r in system.sandboxes["stripe"].control.requests("/v1/refunds") if r["method"] == "POST"]
    assert len(refunds) == 1
    steps = [(e["step"], e["outcome"]) for e in result["timeline"]]
    assert ("WebhookSendgrid", "bounce") in steps
    assert ("RefundPayment", "refunded") in steps
