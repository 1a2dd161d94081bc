"""The shop's status events through the local system: the notification table's stream, the stack's
EventBridge bus, the callback queue and SendCallback, to the local receiver over real HTTP.

Each callback is verified here with the Standard Webhooks reference library (``standardwebhooks``),
independently of the code that signed it, with the signing secret the stack holds. The retry schedule
is configured to zero seconds (FAST_SAGA), so the retry and dead-letter paths cost no waiting.
"""

import json
import time

import pytest
from standardwebhooks.webhooks import Webhook
from support.e2e import WAIT_SECONDS, order_body

pytestmark = pytest.mark.e2e

PERSONAL = (
    "Ada Lovelace",
    "ada@example.com",
    "+447700900123",
    "Thank you for your order",
    "Your order is paid",
)


def signing_secret(system) -> str:
    value = system.boto3_client("secretsmanager").get_secret_value(
        SecretId=system.physical_id("CallbackSigningSecret")
    )
    return json.loads(value["SecretString"])["signing_secret"]


def callbacks_for(system, notification_id, *, until, timeout=WAIT_SECONDS):
    """The receiver's records of this notification's callbacks, once ``until(records)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        records = [
            r
            for r in system.callback_receiver.callbacks()
            if (r["data"] or {}).get("notification_id") == notification_id
        ]
        if until(records):
            return records
        if time.monotonic() > deadline:
            raise AssertionError(f"callbacks so far: {json.dumps(records)[:3000]}")
        time.sleep(0.3)


OUT_OF_THE_DOOR = {"sent", "delivered"}


def channel_changes(records) -> dict[str, set[str]]:
    """Per channel, the statuses its ``notification.channel.updated`` events announced that mean it left."""
    changes: dict[str, set[str]] = {}
    for record in records:
        if record["type"] == "notification.channel.updated":
            status = record["data"]["channel_status"]
            if status in OUT_OF_THE_DOOR:
                changes.setdefault(record["data"]["channel"], set()).add(status)
    return changes


@pytest.fixture
def status_events(system):
    """A rule on the stack's bus that copies every Tidings event to a queue the test reads."""
    events, sqs = system.boto3_client("events"), system.boto3_client("sqs")
    bus = system.physical_id("StatusEventBus")
    queue = sqs.create_queue(QueueName="test-status-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="test-status-events", EventBusName=bus, EventPattern=json.dumps({"source": ["tidings"]})
    )
    events.put_targets(Rule="test-status-events", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])

    def read(notification_id, wanted, timeout=WAIT_SECONDS):
        found, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            ):
                event = json.loads(message["Body"])
                if event["detail"]["data"]["notification_id"] == notification_id:
                    found.append(event)
            if wanted(found):
                return found
        raise AssertionError(f"events so far: {json.dumps(found)[:2000]}")

    yield read
    events.remove_targets(Rule="test-status-events", EventBusName=bus, Ids=["queue"])
    events.delete_rule(Name="test-status-events", EventBusName=bus)
    sqs.delete_queue(QueueUrl=queue)


def test_every_status_change_reaches_the_shop_signed_and_on_the_bus(system, saga, status_events):
    # Given a shop whose endpoint fails each event's first delivery with a 503
    url = system.callback_receiver.callback_url + "?fail=503&times=1"

    # When a notification is delivered
    accepted = saga.notify(order_body(callback_url=url))
    assert accepted.status_code == 202, accepted.text
    notification_id = accepted.json()["notification_id"]
    final = saga.wait_for(notification_id)
    assert final["status"] == "delivered"

    # Then its finished event arrives, on the second try, with the first try's id, and each channel's
    # change out of the door reaches the shop too. Which change that is depends on a race the system
    # allows: the saga records "sent", but when Twilio's "delivered" webhook is processed first, the
    # forward-only ledger skips "sent". And each event's retry runs on its own, in no set order.
    def complete(records):
        finished = any(r["type"] == "notification.finished" and r["answered"] == 204 for r in records)
        return finished and all(channel_changes(records).get(channel) for channel in ("email", "sms"))

    records = callbacks_for(system, notification_id, until=complete)
    [finished] = [r for r in records if r["type"] == "notification.finished" and r["answered"] == 204]
    assert finished["data"]["status"] == "delivered"
    assert finished["delivery"] == 2
    first_try = next(r for r in records if r["webhook_id"] == finished["webhook_id"] and r["delivery"] == 1)
    assert first_try["answered"] == 503

    # And every delivery verifies with the reference library, with no personal data in any body
    secret = signing_secret(system)
    for record in records:
        Webhook(secret).verify(record["body"], record["headers"])
        assert record["verified"]
        for value in PERSONAL:
            assert value not in record["body"]
    for record in records:
        if record["type"] == "notification.channel.updated":
            data = record["data"]
            assert data["previous_channel_status"] != data["channel_status"], data

    # And the same events are on the stack's bus, with the callbacks' ids
    on_bus = status_events(
        notification_id, lambda found: any(e["detail-type"] == "Notification Finished" for e in found)
    )
    bus_ids = {event["detail"]["id"] for event in on_bus}
    assert finished["webhook_id"] in bus_ids
    assert {event["source"] for event in on_bus} == {"tidings"}


def test_a_callback_refused_on_every_try_ends_in_the_dead_letter_queue(system, saga):
    # Given a shop whose endpoint answers 503 to everything
    url = system.callback_receiver.callback_url + "?fail=503"
    accepted = saga.notify(order_body(callback_url=url))
    notification_id = accepted.json()["notification_id"]
    saga.wait_for(notification_id)
    attempts = int(system.stack.template.parameters["CallbackMaxAttempts"])

    # When its finished event has been tried CallbackMaxAttempts times
    records = callbacks_for(
        system,
        notification_id,
        until=lambda rs: sum(r["type"] == "notification.finished" for r in rs) >= attempts,
    )
    finished = [r for r in records if r["type"] == "notification.finished"]
    webhook_id = finished[0]["webhook_id"]
    assert {r["webhook_id"] for r in finished} == {webhook_id}

    # Then it waits in the callback dead-letter queue, once, with no personal data, and no further try
    sqs = system.boto3_client("sqs")
    dlq = system.physical_id("CallbackDeadLetterQueue")
    parked, deadline = {}, time.monotonic() + WAIT_SECONDS
    while webhook_id not in parked and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            body = json.loads(message["Body"])
            if json.loads(body["body"])["data"]["notification_id"] == notification_id:
                parked[body["webhook_id"]] = message
                sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
    assert webhook_id in parked
    for value in PERSONAL:
        assert value not in parked[webhook_id]["Body"]
    assert sum(r["webhook_id"] == webhook_id for r in system.callback_receiver.callbacks()) == attempts

    # The notification's other events end there too: once the callback queue is empty, leave the
    # dead-letter queue empty for the tests after this one
    queue = system.physical_id("CallbackQueue")
    counters = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    while time.monotonic() < deadline:
        waiting = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=counters)["Attributes"]
        if not any(int(value) for value in waiting.values()):
            break
        time.sleep(0.5)
    sqs.purge_queue(QueueUrl=dlq)
