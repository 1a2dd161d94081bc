"""The processor Lambda on moto: each verified event has exactly one effect, whatever the delivery.

The 3-D Secure wait is a real Step Functions ``.waitForTaskToken`` task run by moto's ASL interpreter;
the notification items follow the notification store's design (tidings.notifications.store).
"""

import itertools
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.exceptions import ClientError

from tidings.notifications.models import (
    ChannelRecord,
    Customer,
    Notification,
    PaymentRecord,
    SmsContent,
    StoredReceipt,
    TimelineEvent,
)
from tidings.notifications.store import NotificationStore
from tidings.providers.models import RefundResult
from tidings.webhooks.compensation import RefundCompensator
from tidings.webhooks.models import WebhookEvent

pytestmark = pytest.mark.integration


def notification(
    aws, *, email_policy="best_effort", payment_status="succeeded", channel_status="sent"
) -> str:
    notification_id = str(uuid.uuid4())
    store = NotificationStore(aws.dynamodb.Table(aws.env["NOTIFICATIONS_TABLE"]))
    store.create(
        Notification(
            notification_id=notification_id,
            client_id="client-a",
            order_reference=f"order-{notification_id[:8]}",
            status="delivered",
            created_at=store.now(),
            customer=Customer(name="Ada Lovelace", email="ada@example.com", phone="+447700900123"),
            payment=PaymentRecord(
                amount=1999,
                currency="gbp",
                payment_method="pm_card_visa",
                payment_intent_id=f"pi_{notification_id[:8]}",
                status=payment_status,
            ),
            receipt=StoredReceipt(subject="Your receipt", text="Thank you."),
            sms=SmsContent(text="Paid, thank you."),
            channels={
                "email": ChannelRecord(policy=email_policy, status=channel_status),
                "sms": ChannelRecord(policy="best_effort", status=channel_status),
            },
        )
    )
    return notification_id


def meta(aws, notification_id: str) -> Notification:
    return NotificationStore(aws.dynamodb.Table(aws.env["NOTIFICATIONS_TABLE"])).get(notification_id)


def timeline(aws, notification_id: str) -> list[TimelineEvent]:
    return NotificationStore(aws.dynamodb.Table(aws.env["NOTIFICATIONS_TABLE"])).timeline(notification_id)


def sqs_event(*events: WebhookEvent | str) -> dict:
    records = []
    for index, event in enumerate(events):
        body = event if isinstance(event, str) else event.model_dump_json()
        records.append(
            {
                "messageId": f"m-{index}-{uuid.uuid4().hex[:6]}",
                "receiptHandle": "rh",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:WebhookQueue",
                "awsRegion": "eu-west-1",
            }
        )
    return {"Records": records}


def twilio_event(notification_id: str, status: str, sid: str = "SM1") -> WebhookEvent:
    mapped = {"queued": "queued", "sent": "sent", "delivered": "delivered", "undelivered": "undelivered"}
    return WebhookEvent(
        provider="twilio",
        event_id=f"{sid}:{status}",
        kind=status,
        channel="sms",
        notification_id=notification_id,
        provider_object_id=sid,
        status=mapped[status],
        received_at=int(time.time()),
    )


def stripe_event(notification_id: str | None, kind="payment_intent.succeeded", pi="pi_1", event_id="evt_1"):
    return WebhookEvent(
        provider="stripe",
        event_id=event_id,
        kind=kind,
        channel="payment",
        notification_id=notification_id,
        provider_object_id=pi,
        status="succeeded" if kind.endswith("succeeded") else "failed",
        received_at=int(time.time()),
        detail={"decline_code": "generic_decline"},
    )


def sendgrid_bounce(notification_id: str, event_id: str) -> WebhookEvent:
    return WebhookEvent(
        provider="sendgrid",
        event_id=event_id,
        kind="bounce",
        channel="email",
        notification_id=notification_id,
        provider_object_id="msg1",
        status="bounced",
        received_at=time.time(),
        detail={"type": "bounce"},
    )


# --- the 3-D Secure wait, for real -----------------------------------------------------------------


@pytest.fixture
def waiting_saga(aws):
    """A running execution paused on .waitForTaskToken, its token stored as the saga stores it."""
    sqs, sfn = aws.sqs, boto3.client("stepfunctions")
    token_queue = sqs.create_queue(QueueName=f"tokens-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    role = boto3.client("iam").create_role(
        RoleName=f"r-{uuid.uuid4().hex[:6]}", AssumeRolePolicyDocument="{}"
    )
    definition = {
        "StartAt": "WaitForPaymentAction",
        "States": {
            "WaitForPaymentAction": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": token_queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                "Catch": [{"ErrorEquals": ["PaymentDeclined"], "ResultPath": "$.error", "Next": "Declined"}],
                "End": True,
            },
            "Declined": {"Type": "Pass", "End": True},
        },
    }
    machine = sfn.create_state_machine(
        name=f"saga-{uuid.uuid4().hex[:6]}", definition=json.dumps(definition), roleArn=role["Role"]["Arn"]
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, name=uuid.uuid4().hex, input="{}")[
        "executionArn"
    ]
    token = None
    for _ in range(100):  # the interpreter runs on its own thread; wait for it to reach the task
        messages = sqs.receive_message(QueueUrl=token_queue).get("Messages", [])
        if messages:
            token = json.loads(messages[0]["Body"])["token"]
            break
        time.sleep(0.05)
    assert token, "the execution never reached the wait"
    notification_id = notification(aws, payment_status="requires_action", channel_status="pending")
    table = aws.dynamodb.Table(aws.env["NOTIFICATIONS_TABLE"])
    NotificationStore(table).link_payment_intent(notification_id, "pi_3ds")
    # Stored where the saga's AwaitPaymentAction step stores it (META.payment_task_token)
    table.update_item(
        Key={"pk": f"NOTIFICATION#{notification_id}", "sk": "META"},
        UpdateExpression="SET payment_task_token = :t, #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":t": token, ":s": "awaiting_payment_action"},
    )

    def finished() -> dict:
        for _ in range(100):
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.05)
        return described

    def history_types() -> list[str]:
        return [e["type"] for e in sfn.get_execution_history(executionArn=execution)["events"]]

    return type(
        "Saga",
        (),
        {
            "notification_id": notification_id,
            "finished": staticmethod(finished),
            "history_types": staticmethod(history_types),
        },
    )


def test_stripe_success_resumes_the_waiting_saga_once(processor, aws, context, waiting_saga):
    # Given a saga waiting for 3-D Secure, and the Stripe event (correlated by the PaymentIntent only)
    event = stripe_event(None, pi="pi_3ds")
    # When the processor gets it
    result = processor.lambda_handler(sqs_event(event), context)
    # Then the saga resumes with the payment's outcome and the webhook is in the timeline
    assert result == {"batchItemFailures": []}
    described = waiting_saga.finished()
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["payment_intent_id"] == "pi_3ds"
    entries = [e for e in timeline(aws, waiting_saga.notification_id) if e.step == "WebhookStripe"]
    assert [e.outcome for e in entries] == ["payment_intent.succeeded"]
    assert meta(aws, waiting_saga.notification_id).payment_task_token is None


def test_stripe_payment_failure_fails_the_wait_as_a_declined_payment(processor, aws, context, waiting_saga):
    event = stripe_event(waiting_saga.notification_id, kind="payment_intent.payment_failed")
    assert processor.lambda_handler(sqs_event(event), context) == {"batchItemFailures": []}
    described = waiting_saga.finished()
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["error"]["Error"] == "PaymentDeclined"


def test_the_same_event_five_times_concurrently_has_one_effect(processor, aws, context, waiting_saga):
    # Given five deliveries of one Stripe event arriving at once (five containers)
    event = stripe_event(waiting_saga.notification_id, event_id="evt_dup")
    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(pool.map(lambda _: processor.lambda_handler(sqs_event(event), context), range(5)))
    # When the ones that found the event in flight are redelivered
    for result in results:
        for _failure in result["batchItemFailures"]:
            assert processor.lambda_handler(sqs_event(event), context) == {"batchItemFailures": []}
    # Then the saga was resumed exactly once and the timeline holds the webhook once
    assert waiting_saga.finished()["status"] == "SUCCEEDED"
    assert waiting_saga.history_types().count("TaskSucceeded") == 1
    entries = [e for e in timeline(aws, waiting_saga.notification_id) if e.step == "WebhookStripe"]
    assert len(entries) == 1


def received_from_queue(aws, count: int) -> dict:
    """``count`` messages received from the real webhook queue (each with a live receipt handle), shaped
    as the SQS event source hands them to the processor."""
    received = aws.sqs.receive_message(QueueUrl=aws.env["WEBHOOK_QUEUE_URL"], MaxNumberOfMessages=10)
    messages = received.get("Messages", [])
    assert len(messages) == count
    shaped = sqs_event(*[message["Body"] for message in messages])
    for record, message in zip(shaped["Records"], messages, strict=True):
        record.update(messageId=message["MessageId"], receiptHandle=message["ReceiptHandle"])
    return shaped


def test_a_copy_that_finds_the_event_in_flight_comes_back_in_seconds_not_after_the_visibility_timeout(
    aws, context, cold_start, monkeypatch
):
    # Given two containers that retry an event found in flight after 0 s (the queue's own timeout: 180 s)
    monkeypatch.setenv("WEBHOOK_IN_PROGRESS_RETRY_SECONDS", "0")
    container, other_container = (cold_start("webhook_processor", "processor_app") for _ in range(2))
    # And two deliveries of one event, the first being applied in the other container (held there)
    notification_id = notification(aws)
    event = twilio_event(notification_id, "delivered")
    for _ in range(2):
        aws.sqs.send_message(QueueUrl=aws.env["WEBHOOK_QUEUE_URL"], MessageBody=event.model_dump_json())
    first, second = ({"Records": [record]} for record in received_from_queue(aws, 2)["Records"])
    applying, release = threading.Event(), threading.Event()
    record_webhook = other_container.consumer.ledger.record_webhook

    def held(*args, **kwargs):
        applying.set()
        assert release.wait(10)
        return record_webhook(*args, **kwargs)

    monkeypatch.setattr(other_container.consumer.ledger, "record_webhook", held)
    with ThreadPoolExecutor(max_workers=1) as pool:
        first_result = pool.submit(other_container.lambda_handler, first, context)
        assert applying.wait(10)
        # When the second copy reaches this container meanwhile
        second_result = container.lambda_handler(second, context)
        release.set()
        assert first_result.result() == {"batchItemFailures": []}
    # Then it fails (acknowledging it would lose the event if the first attempt failed), yet is on the
    # queue again at once rather than after the visibility timeout
    assert second_result == {"batchItemFailures": [{"itemIdentifier": second["Records"][0]["messageId"]}]}
    redelivered = received_from_queue(aws, 1)
    # And its redelivery is acknowledged as a duplicate: one effect in all
    assert container.lambda_handler(redelivered, context) == {"batchItemFailures": []}
    assert len([e for e in timeline(aws, notification_id) if e.step == "WebhookTwilio"]) == 1


def test_a_replayed_event_is_acknowledged_without_a_second_effect(processor, aws, context, capsys):
    notification_id = notification(aws)
    event = twilio_event(notification_id, "delivered")
    assert processor.lambda_handler(sqs_event(event), context) == {"batchItemFailures": []}
    capsys.readouterr()
    # When the provider delivers it again (received later, so a different message), twice in one batch
    replay = event.model_copy(update={"received_at": event.received_at + 60})
    assert processor.lambda_handler(sqs_event(replay, replay), context) == {"batchItemFailures": []}
    # Then nothing more is written, and both replays are counted as duplicates
    assert len([e for e in timeline(aws, notification_id) if e.step == "WebhookTwilio"]) == 1
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert sum(sum(record.get("WebhookDuplicate", [])) for record in emf) == 2


def test_a_late_resume_of_a_spent_token_is_not_an_error(processor, aws, context, waiting_saga):
    # Given the saga already resumed by another path (the token is spent)
    boto3.client("stepfunctions").send_task_success(
        taskToken=meta(aws, waiting_saga.notification_id).payment_task_token, output="{}"
    )
    # When the webhook arrives after all
    result = processor.lambda_handler(sqs_event(stripe_event(waiting_saga.notification_id)), context)
    # Then it is acknowledged and recorded, and nothing fails
    assert result == {"batchItemFailures": []}
    assert meta(aws, waiting_saga.notification_id).payment_task_token is None


# --- delivery status, in any order -------------------------------------------------------------------


@pytest.mark.parametrize("order", list(itertools.permutations(["queued", "sent", "delivered"])))
def test_delivery_events_in_any_order_end_delivered(order, processor, aws, context):
    notification_id = notification(aws)
    for status in order:
        assert processor.lambda_handler(sqs_event(twilio_event(notification_id, status)), context) == {
            "batchItemFailures": []
        }
    sms = meta(aws, notification_id).channels["sms"]
    assert sms.delivery_status == "delivered"
    assert sms.status == "delivered"
    # Every report is in the timeline, even those that could not move the status
    assert sorted(e.outcome for e in timeline(aws, notification_id)) == sorted(order)


def test_undelivered_is_terminal_and_recorded_as_a_failed_delivery(processor, aws, context):
    notification_id = notification(aws)
    for status in ["sent", "undelivered", "delivered"]:
        processor.lambda_handler(sqs_event(twilio_event(notification_id, status)), context)
    sms = meta(aws, notification_id).channels["sms"]
    assert (sms.delivery_status, sms.status) == ("undelivered", "rejected")
    # best_effort: no compensation, the notification keeps its status
    assert meta(aws, notification_id).status == "delivered"


# --- compensation ----------------------------------------------------------------------------------------


class RecordingGateway:
    def __init__(self):
        self.refunds = []

    def refund(self, payment_intent_id, idempotency_key, amount=None):
        self.refunds.append((payment_intent_id, idempotency_key))
        return RefundResult(
            refund_id="re_1", status="succeeded", payment_intent_id=payment_intent_id, amount=1999
        )


def test_hard_bounce_on_a_required_channel_refunds_once_and_compensates(processor, aws, context):
    # Given a paid notification whose receipt e-mail is required, with the saga's steps refunding
    notification_id = notification(aws, email_policy="required")
    gateway = RecordingGateway()
    processor.consumer.compensator = RefundCompensator(processor.consumer.ledger, lambda: gateway)
    bounce = sendgrid_bounce(notification_id, event_id="sg-bounce")
    dropped = bounce.model_copy(update={"event_id": "sg-dropped", "kind": "dropped", "status": "failed"})
    # When the bounce arrives, and then SendGrid also reports the message dropped
    assert processor.lambda_handler(sqs_event(bounce), context) == {"batchItemFailures": []}
    assert processor.lambda_handler(sqs_event(dropped), context) == {"batchItemFailures": []}
    # Then the payment was refunded once, with the saga's own refund key, and the notification compensated
    assert gateway.refunds == [(f"pi_{notification_id[:8]}", f"tidings-{notification_id}-refund")]
    item = meta(aws, notification_id)
    assert (item.status, item.channels["email"].status) == ("compensated", "failed")
    assert item.payment.status == "refunded"
    assert [e.step for e in timeline(aws, notification_id)].count("RefundPayment") == 1


def test_compensation_waits_for_the_saga_to_finish(processor, aws, context):
    # Given a required e-mail whose bounce arrives while the saga is still running (its final status
    # would overwrite "compensated")
    notification_id = notification(aws, email_policy="required")
    table = aws.dynamodb.Table(aws.env["NOTIFICATIONS_TABLE"])

    def set_status(status):
        table.update_item(
            Key={"pk": f"NOTIFICATION#{notification_id}", "sk": "META"},
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": status},
        )

    set_status("running")
    gateway = RecordingGateway()
    processor.consumer.compensator = RefundCompensator(processor.consumer.ledger, lambda: gateway)
    bounce = sendgrid_bounce(notification_id, event_id="sg-early-bounce")
    # When it is processed: recorded, but the message goes back to the queue and nothing is refunded
    first = processor.lambda_handler(sqs_event(bounce), context)
    assert len(first["batchItemFailures"]) == 1
    assert gateway.refunds == []
    assert meta(aws, notification_id).channels["email"].delivery_status == "bounced"
    # Then once the saga has ended, the redelivery compensates
    set_status("delivered")
    assert processor.lambda_handler(sqs_event(bounce), context) == {"batchItemFailures": []}
    assert len(gateway.refunds) == 1
    assert meta(aws, notification_id).status == "compensated"
    assert len([e for e in timeline(aws, notification_id) if e.step == "WebhookSendgrid"]) == 1


# --- failures: retried, then dead-lettered -----------------------------------------------------------------


def test_a_failure_is_reported_for_its_record_only_and_the_redelivery_applies_it(processor, aws, context):
    good_id, bad_id = notification(aws), notification(aws)

    class FailingLedger:
        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        def record_webhook(self, notification_id, event):
            if notification_id == bad_id:
                raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutItem")
            return self.real.record_webhook(notification_id, event)

    real_ledger = processor.consumer.ledger
    processor.consumer.ledger = FailingLedger(real_ledger)
    batch = sqs_event(twilio_event(good_id, "delivered"), twilio_event(bad_id, "delivered", sid="SM2"))
    result = processor.lambda_handler(batch, context)
    # Only the failing record goes back to the queue
    assert result == {"batchItemFailures": [{"itemIdentifier": batch["Records"][1]["messageId"]}]}
    assert meta(aws, good_id).channels["sms"].delivery_status == "delivered"
    # And its dedupe record was released, so the redelivery applies it
    processor.consumer.ledger = real_ledger
    assert processor.lambda_handler(sqs_event(twilio_event(bad_id, "delivered", sid="SM2")), context) == {
        "batchItemFailures": []
    }
    assert meta(aws, bad_id).channels["sms"].delivery_status == "delivered"


def test_a_poison_message_fails_alone(processor, context):
    batch = sqs_event("not json", twilio_event("missing-notification", "sent"))
    result = processor.lambda_handler(batch, context)
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [batch["Records"][0]["messageId"]]


def test_an_uncorrelated_copy_of_an_event_does_not_swallow_the_correlated_one(processor, aws, context):
    # Given Twilio reported a status once to an account-wide URL (no notification id) and once to ours
    notification_id = notification(aws)
    correlated = twilio_event(notification_id, "delivered")
    uncorrelated = correlated.model_copy(update={"notification_id": None})
    # When the uncorrelated copy is processed first
    assert processor.lambda_handler(sqs_event(uncorrelated), context) == {"batchItemFailures": []}
    assert processor.lambda_handler(sqs_event(correlated), context) == {"batchItemFailures": []}
    # Then the correlated one still has its effect
    assert meta(aws, notification_id).channels["sms"].delivery_status == "delivered"


def test_an_uncorrelated_event_is_acknowledged_and_writes_nothing(processor, aws, context):
    # Given events for an unknown PaymentIntent and for a notification id the table does not hold
    events = [stripe_event(None, pi="pi_unknown"), twilio_event("no-such-notification", "delivered")]
    # Then both are acknowledged and no orphan timeline item appears
    assert processor.lambda_handler(sqs_event(*events), context) == {"batchItemFailures": []}
    assert aws.dynamodb.Table(aws.env["NOTIFICATIONS_TABLE"]).scan()["Items"] == []
