"""Every path of the notification saga through the local system: real HTTP, real JWT, real ASL.

Each test asserts the final status, the execution history (states entered, retries taken), what each
provider sandbox received (no second charge, no duplicate e-mail or SMS) and the queues' contents.
"""

import json

import pytest
from support.e2e import History, order_body, queue_messages

from tidings_local.sandboxes import credentials

pytestmark = pytest.mark.e2e


def provider_calls(system, name, prefix):
    return [r for r in system.sandboxes[name].control.requests(prefix) if r["method"] == "POST"]


def charges(system):
    return provider_calls(system, "stripe", "/v1/payment_intents")


#: The 3-D Secure wait of the timeout test: the path under test, not a race (nothing resumes the payment).
SHORT_PAYMENT_ACTION_TIMEOUT_SECONDS = 3


@pytest.fixture
def short_payment_action_timeout(system):
    """The 3-D Secure wait times out after a few seconds, for the test of that path only; every other
    test keeps FAST_SAGA's long wait, so a resumed payment never races the timeout. The state machine is
    updated as a redeploy with a short PaymentActionTimeoutSeconds would update it, and restored after
    (an execution keeps the definition it started with)."""
    stepfunctions = system.boto3_client("stepfunctions")
    arn = system.physical_id("NotificationSagaStateMachine")
    original = stepfunctions.describe_state_machine(stateMachineArn=arn)["definition"]
    definition = json.loads(original)
    definition["States"]["WaitForPaymentAction"]["TimeoutSeconds"] = SHORT_PAYMENT_ACTION_TIMEOUT_SECONDS
    stepfunctions.update_state_machine(stateMachineArn=arn, definition=json.dumps(definition))
    yield
    stepfunctions.update_state_machine(stateMachineArn=arn, definition=original)


def test_all_delivered(system, saga):
    # Given healthy providers / When a notification is sent
    result = saga.run(order_body())
    # Then it is delivered by the primary providers, once each
    assert result["status"] == "delivered"
    history = History(system.boto3_client("stepfunctions"), result["execution_arn"])
    assert history.status == "SUCCEEDED"
    assert history.entered == [
        "ChargePayment",
        "CheckPaymentStatus",
        "SendReceiptEmail",
        "SendSms",
        "RecordOutcome",
        "CheckOutcome",
        "NotificationFinished",
    ]
    assert history.output == {
        "notification_id": result["notification_id"],
        "status": "delivered",
        "reason": None,
    }
    assert len(charges(system)) == 1
    assert len(provider_calls(system, "sendgrid", "/v3/mail/send")) == 1
    assert len(provider_calls(system, "twilio", "/2010-04-01")) == 1
    assert result["payment"]["payment_intent_id"].startswith("pi_")
    assert result["channels"]["email"]["provider_message_id"]
    assert result["channels"]["sms"]["provider_message_id"].startswith("SM")
    assert [
        e["step"] for e in result["timeline"] if e["step"] in ("ChargePayment", "SendReceiptEmail", "SendSms")
    ] == [
        "ChargePayment",
        "SendReceiptEmail",
        "SendSms",
    ]
    # Nothing was parked anywhere
    sqs = system.boto3_client("sqs")
    for queue in (
        "EmailDeadLetterQueue",
        "SmsOutageQueue",
        "SmsDeadLetterQueue",
        "CompensationDeadLetterQueue",
    ):
        assert queue_messages(sqs, system.physical_id(queue), result["notification_id"], wait=0) == [], queue


def test_card_declined_ends_without_sending_anything(system, saga):
    result = saga.run(order_body(payment={"payment_method": "pm_card_chargeDeclined"}))
    assert result["status"] == "payment_declined"
    history = History(system.boto3_client("stepfunctions"), result["execution_arn"])
    assert history.entered[:2] == ["ChargePayment", "RecordOutcome"]
    assert history.retries("ChargePayment") == 0
    assert "RefundPayment" not in history.entered
    assert len(charges(system)) == 1
    assert provider_calls(system, "sendgrid", "/v3/mail/send") == []
    assert provider_calls(system, "twilio", "/2010-04-01") == []
    compensation = system.physical_id("CompensationDeadLetterQueue")
    assert queue_messages(system.boto3_client("sqs"), compensation, result["notification_id"], wait=0) == []


def test_3ds_waits_then_the_webhook_resumes_the_saga(system, saga):
    # Given a card that needs 3-D Secure
    accepted = saga.notify(order_body(payment={"payment_method": "pm_card_threeDSecure2Required"})).json()
    waiting = saga.wait_for(accepted["notification_id"], {"awaiting_payment_action"})
    # When the customer completes the challenge (the sandbox then sends Stripe's signed webhook)
    system.sandboxes["stripe"].control.complete_action(waiting["payment"]["payment_intent_id"], "succeeded")
    result = saga.wait_for(accepted["notification_id"])
    # Then the saga resumed and delivered, charging once
    assert result["status"] == "delivered"
    history = History(system.boto3_client("stepfunctions"), result["execution_arn"])
    assert history.path_contains(
        "ChargePayment", "CheckPaymentStatus", "WaitForPaymentAction", "SendReceiptEmail"
    )
    assert len(charges(system)) == 1
    assert any(event["step"].startswith("Webhook") for event in result["timeline"])


def test_3ds_wait_times_out_and_cancels_the_payment(system, saga, short_payment_action_timeout):
    result = saga.run(order_body(payment={"payment_method": "pm_card_threeDSecure2Required"}))
    assert result["status"] == "payment_declined"
    assert result["status_reason"] == "payment_action_timeout"
    history = History(system.boto3_client("stepfunctions"), result["execution_arn"])
    assert history.path_contains(
        "WaitForPaymentAction", "CancelPayment", "CheckCancellation", "RecordOutcome"
    )
    assert "SendReceiptEmail" not in history.entered
    cancels = provider_calls(
        system, "stripe", f"/v1/payment_intents/{result['payment']['payment_intent_id']}/cancel"
    )
    assert len(cancels) == 1
    assert provider_calls(system, "sendgrid", "/v3/mail/send") == []


def test_sendgrid_down_falls_back_to_ses_after_its_retries(system, saga):
    system.sandboxes["sendgrid"].control.inject_fault("outage", path_prefix="/v3/mail/send")
    result = saga.run(order_body())
    assert result["status"] == "delivered_with_fallback"
    assert result["channels"]["email"]["provider"] == "ses"
    history = History(system.boto3_client("stepfunctions"), result["execution_arn"])
    assert history.path_contains("SendReceiptEmail", "SendReceiptEmailViaSes", "SendSms")
    assert history.retries("SendReceiptEmail") == 1  # EmailRetryMaxAttempts, then the fallback
    assert history.retries("SendReceiptEmailViaSes") == 0
    assert len(charges(system)) == 1
    assert len(provider_calls(system, "twilio", "/2010-04-01")) == 1


def test_both_email_providers_down_best_effort_dead_letters_the_email_and_still_texts(system, saga):
    system.sandboxes["sendgrid"].control.inject_fault("outage", path_prefix="/v3/mail/send")
    system.outage["ses"].down = True
    result = saga.run(order_body())
    assert result["status"] == "partially_delivered"
    assert result["channels"]["email"]["status"] == "dead_lettered"
    # sent, or already delivered when Twilio's status callback was processed before this read
    assert result["channels"]["sms"]["status"] in {"sent", "delivered"}
    history = History(system.boto3_client("stepfunctions"), result["execution_arn"])
    assert history.path_contains(
        "SendReceiptEmail",
        "SendReceiptEmailViaSes",
        "CheckEmailPolicyAfterOutage",
        "ParkEmailInDeadLetterQueue",
        "SendSms",
    )
    [parked] = queue_messages(
        system.boto3_client("sqs"), system.physical_id("EmailDeadLetterQueue"), result["notification_id"]
    )
    assert parked["kind"] == "email"
    assert "ada@example.com" not in str(parked)
    assert len(charges(system)) == 1
    assert provider_calls(system, "stripe", "/v1/refunds") == []


def test_required_email_that_cannot_be_sent_refunds_the_payment(system, saga):
    system.sandboxes["sendgrid"].control.inject_fault("outage", path_prefix="/v3/mail/send")
    system.outage["ses"].down = True
    result = saga.run(order_body(delivery_policy={"email": "required"}))
    assert result["status"] == "compensated"
    assert result["status_reason"] == "required_email_failed"
    assert result["payment"]["refund_id"].startswith("re_")
    history = History(system.boto3_client("stepfunctions"), result["execution_arn"])
    assert "RefundPayment" in history.entered
    assert "SendSms" not in history.entered
    assert len(charges(system)) == 1
    assert len(provider_calls(system, "stripe", "/v1/refunds")) == 1
    assert provider_calls(system, "twilio", "/2010-04-01") == []


def test_twilio_down_falls_back_to_sns(system, saga):
    system.sandboxes["twilio"].control.inject_fault("outage", path_prefix="/2010-04-01")
    result = saga.run(order_body())
    assert result["status"] == "delivered_with_fallback"
    assert result["channels"]["sms"]["provider"] == "sns"
    history = History(system.boto3_client("stepfunctions"), result["execution_arn"])
    assert history.path_contains("SendReceiptEmail", "SendSms", "SendSmsViaSns", "RecordOutcome")
    assert history.retries("SendSms") == 1
    assert len(provider_calls(system, "sendgrid", "/v3/mail/send")) == 1


def test_both_sms_providers_down_parks_the_sms_and_a_later_try_delivers_it(system, saga):
    system.sandboxes["twilio"].control.inject_fault("outage", path_prefix="/2010-04-01")
    system.outage["sns"].down = True
    result = saga.run(order_body())
    assert result["status"] == "partially_delivered"
    history = History(system.boto3_client("stepfunctions"), result["execution_arn"])
    assert history.path_contains(
        "SendSmsViaSns", "CheckSmsPolicyAfterOutage", "ParkSmsInOutageQueue", "RecordOutcome"
    )
    # When Twilio recovers, the outage queue's next try sends the SMS
    system.sandboxes["twilio"].control.clear_faults()
    late = saga.wait_for(result["notification_id"], {"delivered_with_fallback"})
    # (Twilio's status callback may already have moved it on from sent to delivered)
    assert late["channels"]["sms"]["status"] in ("sent", "delivered")
    assert late["channels"]["sms"]["provider"] == "twilio"
    assert ("RetryDelivery", "sent") in {(e["step"], e["outcome"]) for e in late["timeline"]}
    sent = [r for r in provider_calls(system, "twilio", "/2010-04-01") if r["status"] < 300]
    assert len(sent) == 1


def test_sms_still_undeliverable_after_every_later_try_goes_to_the_sms_dead_letter_queue(system, saga):
    system.sandboxes["twilio"].control.inject_fault("outage", path_prefix="/2010-04-01")
    system.outage["sns"].down = True
    result = saga.run(order_body())
    assert result["status"] == "partially_delivered"
    [dead] = queue_messages(
        system.boto3_client("sqs"),
        system.physical_id("SmsDeadLetterQueue"),
        result["notification_id"],
        wait=30,
    )
    assert dead["tries"] == 3  # RedeliveryMaxTries
    assert "+447700900123" not in str(dead)
    final = saga.status(result["notification_id"])
    assert final["channels"]["sms"]["status"] == "dead_lettered"
    retries = [
        e for e in final["timeline"] if (e["step"], e["outcome"]) == ("RetryDelivery", "retry_scheduled")
    ]
    assert [e["details"]["next_try_in_seconds"] for e in retries] == [1, 2]


def test_a_refund_that_cannot_be_made_goes_to_the_compensation_dead_letter_queue(system, saga):
    system.sandboxes["sendgrid"].control.inject_fault("outage", path_prefix="/v3/mail/send")
    system.outage["ses"].down = True
    system.sandboxes["stripe"].control.inject_fault("outage", path_prefix="/v1/refunds")
    result = saga.run(order_body(delivery_policy={"email": "required"}))
    assert result["status"] == "failed"
    assert result["status_reason"] == "refund_failed"
    history = History(system.boto3_client("stepfunctions"), result["execution_arn"])
    assert history.status == "FAILED"  # the ExecutionsFailed alarm sees it
    assert history.path[-5:] == [
        "RefundPayment",
        "ParkRefundInDeadLetterQueue",
        "RecordOutcome",
        "CheckOutcome",
        "NotificationFailed",
    ]
    assert history.retries("RefundPayment") == 1
    [case] = queue_messages(
        system.boto3_client("sqs"),
        system.physical_id("CompensationDeadLetterQueue"),
        result["notification_id"],
    )
    assert case["kind"] == "refund"
    assert case["error"]["Error"] in (
        "ProviderUnavailable",
        "CircuitOpen",
    )  # retries spent, or breaker opened by them
    assert len(charges(system)) == 1


#: What no log line, API answer or queued message may hold: the customer's contact details, name and
#: texts as order_body() sends them, the sandboxes' provider secrets, a card number.
SENSITIVE_VALUES = [
    "ada@example.com",
    "+447700900123",
    "447700900123",
    "Ada Lovelace",
    "Lovelace",
    "Thank you for your order.",
    "Your order is paid. Thank you!",
    "4242424242424242",
    credentials.STRIPE_API_KEY,
    credentials.STRIPE_WEBHOOK_SECRET,
    credentials.SENDGRID_API_KEY,
    credentials.TWILIO_AUTH_TOKEN,
    credentials.TWILIO_API_KEY_SECRET,
]
#: Every queue that holds what a notification left behind (dead letters, parked and retried messages).
HELD_QUEUES = [
    "EmailDeadLetterQueue",
    "SmsDeadLetterQueue",
    "SmsOutageQueue",
    "CompensationDeadLetterQueue",
    "WebhookDeadLetterQueue",
    "BulkDeadLetterQueue",
]


def _peek(sqs, queue_url: str) -> list[str]:
    """Every body on the queue, left in place (visibility 0: visible again at once)."""
    bodies: dict[str, str] = {}
    for _ in range(20):
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        new = {m["MessageId"]: m["Body"] for m in batch.get("Messages", []) if m["MessageId"] not in bodies}
        if not new:
            break
        bodies.update(new)
    return list(bodies.values())


def test_no_log_answer_or_dead_letter_holds_a_secret_or_personal_data(system, saga, function_logs):
    # Given a success, a fallback and a declined payment of its own (whatever order the tests run in),
    # on top of every line the session's other tests have logged so far
    answers = [json.dumps(saga.run(order_body()))]
    answers.append(json.dumps(saga.run(order_body(payment={"payment_method": "pm_card_chargeDeclined"}))))
    system.sandboxes["sendgrid"].control.inject_fault("outage", path_prefix="/v3/mail/send")
    answers.append(json.dumps(saga.run(order_body())))
    for _ in range(10):  # run alone, a few more notifications give the check enough lines to read
        if len(function_logs) > 100:
            break
        saga.run(order_body())
    # Then no line of any function holds a full e-mail address or phone number, the customer's name, the
    # receipt or SMS text, a provider secret or a card number
    assert len(function_logs) > 100
    leaked = [
        (function, line[:200])
        for function, line in function_logs
        if any(value in line for value in SENSITIVE_VALUES)
    ]
    assert leaked == []
    # And neither do the API's answers about those notifications, nor any message a queue holds
    sqs = system.boto3_client("sqs")
    held = [body for queue in HELD_QUEUES for body in _peek(sqs, system.physical_id(queue))]
    assert [text[:200] for text in answers + held if any(v in text for v in SENSITIVE_VALUES)] == []
