"""One request id, followed from the API's answer to the execution input, the providers' requests, the
steps' and the webhook processor's log lines, a dead-letter body and the audit log."""

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from support.e2e import order_body, queue_messages

pytestmark = pytest.mark.e2e

REQUEST_ID = "shop-7:trace.e2e-1"


def test_one_request_id_is_carried_from_the_answer_to_the_providers_the_logs_and_the_dead_letter_body(
    system, saga, function_logs
):
    # Given both e-mail providers down, so the best-effort receipt is dead-lettered
    system.sandboxes["sendgrid"].control.inject_fault("outage", path_prefix="/v3/mail/send")
    system.outage["ses"].down = True

    # When a shop sends a notification naming its request
    response = saga.notify(order_body(), **{"X-Request-Id": REQUEST_ID})
    assert response.status_code == 202, response.text
    # Then the answer carries it back
    assert response.headers["x-request-id"] == REQUEST_ID
    notification_id = response.json()["notification_id"]
    final = saga.wait_for(notification_id)
    assert final["status"] == "partially_delivered"

    # The execution input carries it
    sfn = system.boto3_client("stepfunctions")
    described = sfn.describe_execution(executionArn=final["execution_arn"])
    assert json.loads(described["input"])["request_id"] == REQUEST_ID

    # Stripe got it as PaymentIntent metadata, SendGrid as custom_args (seen at the sandboxes)
    charges = [
        r
        for r in system.sandboxes["stripe"].control.requests("/v1/payment_intents")
        if r["method"] == "POST" and notification_id in json.dumps(r["form"])
    ]
    assert charges
    assert all(r["form"]["metadata"]["request_id"] == REQUEST_ID for r in charges)
    mails = [
        r
        for r in system.sandboxes["sendgrid"].control.requests("/v3/mail/send")
        if notification_id in json.dumps(r["json"])
    ]
    assert mails
    assert all(r["json"]["personalizations"][0]["custom_args"]["request_id"] == REQUEST_ID for r in mails)
    # Twilio, which keeps no metadata, got it in the StatusCallback URL's query
    texts = [
        r
        for r in system.sandboxes["twilio"].control.requests()
        if r["path"].endswith("/Messages.json")
        and notification_id in (r.get("form") or {}).get("StatusCallback", "")
    ]
    assert texts
    for text in texts:
        query = parse_qs(urlsplit(text["form"]["StatusCallback"]).query)
        assert query["request_id"] == [REQUEST_ID]

    # The dead-letter body carries it
    sqs = system.boto3_client("sqs")
    [parked] = queue_messages(sqs, system.physical_id("EmailDeadLetterQueue"), notification_id)
    assert parked["request_id"] == REQUEST_ID

    # Every log line about this notification from the API and the steps carries it
    lines = [
        (function, json.loads(line))
        for function, line in function_logs
        if notification_id in line and line.startswith("{")
    ]
    by_function = {function for function, record in lines}
    assert {"NotifyApiFunction", "ChargePaymentFunction", "SendEmailFunction"} <= by_function
    for function, record in lines:
        if function in ("NotifyApiFunction", "ChargePaymentFunction", "SendEmailFunction"):
            assert record.get("api_request_id") == REQUEST_ID, (function, record)

    # The Stripe webhook of the charge came back with it, and its processing logged it
    def webhook_applied() -> bool:
        return any(
            json.loads(line).get("message") == "webhook applied"
            for function, line in list(function_logs)
            if function == "WebhookProcessorFunction" and REQUEST_ID in line and line.startswith("{")
        )

    deadline = time.monotonic() + 30
    while not webhook_applied() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert webhook_applied()

    # And the audit log says who sent it, under this request id
    ops_token = system.token(scope="tidings/ops")
    audit = saga.http.get(
        "/audit",
        params={"notification_id": notification_id},
        headers={"Authorization": f"Bearer {ops_token}"},
    ).json()["records"]
    assert [(r["action"], r["request_id"]) for r in audit if r["action"] == "notifications.create"] == [
        ("notifications.create", REQUEST_ID)
    ]
