"""Status events from the notification table's change stream: which changes give which events, their
stable ids, and that they never carry personal data. The store writes for real (moto with the
template's stream), so the images are the ones AWS would hand over."""

import json

import boto3
import pytest
from support.saga import create_table_from_template, notification_request
from support.template import resource_properties

from tidings.notifications.models import ChannelStatus, Compensation, Notification, NotificationStatus
from tidings.notifications.store import NotificationStore
from tidings.outbound.events import CHANNEL_UPDATED, FINISHED, events_for_stream_record

pytestmark = pytest.mark.unit

NID = "33333333-4444-5555-6666-777777777777"
PERSONAL = (
    "Ada",
    "Lovelace",
    "ada@example.com",
    "+447700900123",
    "Thank you for order 1001",
    "Order 1001 is",
)


@pytest.fixture
def stream(moto_aws):
    """The notifications table as the template declares it, stream included; reads what changed."""
    table = create_table_from_template("NotificationsTable", "notifications")
    streams = boto3.client("dynamodb").update_table(
        TableName="notifications",
        StreamSpecification={
            "StreamEnabled": True,
            **resource_properties("NotificationsTable")["StreamSpecification"],
        },
    )
    arn = streams["TableDescription"]["LatestStreamArn"]
    client = boto3.client("dynamodbstreams")
    shard = client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    position = {
        "iterator": client.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
    }

    def changes():
        answer = client.get_records(ShardIterator=position["iterator"])
        position["iterator"] = answer["NextShardIterator"]
        return answer["Records"]

    store = NotificationStore(table)
    request = notification_request(callback_url="https://shop.example.com/hook")
    store.create(Notification.accepted(NID, "client-a", request, at=store.now()))
    changes.store = store
    return changes


def events_of(records):
    return [event for record in records for event in events_for_stream_record(record)]


def test_a_new_notification_gives_no_event(stream):
    assert events_of(stream()) == []


def test_each_channel_status_change_gives_one_event_with_the_masked_recipient(stream):
    stream()
    # When the e-mail is sent and then confirmed
    stream.store.update_channel(
        NID, "email", ChannelStatus.SENT, provider="sendgrid", provider_message_id="m1"
    )
    stream.store.update_channel(
        NID, "email", ChannelStatus.DELIVERED, with_status={"delivery_status": "delivered"}
    )

    # Then one event per change, each naming the step it made
    sent, delivered = events_of(stream())
    assert (sent.type, delivered.type) == (CHANNEL_UPDATED, CHANNEL_UPDATED)
    assert sent.data["previous_channel_status"] == "pending"
    assert sent.data["channel_status"] == "sent"
    assert delivered.data == {
        "notification_id": NID,
        "order_reference": "order-1001",
        "status": "accepted",
        "channel": "email",
        "channel_status": "delivered",
        "previous_channel_status": "sent",
        "provider": "sendgrid",
        "delivery_status": "delivered",
        "recipient": "a***@example.com",
    }
    assert delivered.callback_url == "https://shop.example.com/hook"
    assert "callback_url" not in delivered.body()


def test_a_write_that_keeps_the_status_gives_no_event(stream):
    stream.store.update_channel(NID, "sms", ChannelStatus.DELIVERED)
    stream()
    stream.store.update_channel(NID, "sms", ChannelStatus.SENT, provider="twilio")  # late: kept
    stream.store.set_status(NID, NotificationStatus.RUNNING)
    assert events_of(stream()) == []


def test_the_final_status_gives_one_finished_event_with_no_personal_data(stream):
    store = stream.store
    store.update_channel(NID, "email", ChannelStatus.DELIVERED, provider="sendgrid")
    store.update_channel(NID, "sms", ChannelStatus.SENT, provider="twilio")
    store.record_charge(NID, payment_intent_id="pi_1", status="succeeded", next_action_url=None)
    stream()

    store.finish(NID, NotificationStatus.DELIVERED, None)

    [finished] = events_of(stream())
    assert finished.type == FINISHED
    assert finished.data["status"] == "delivered"
    assert finished.data["payment"] == {
        "status": "succeeded",
        "amount": 2599,
        "currency": "gbp",
        "payment_intent_id": "pi_1",
    }
    assert finished.data["channels"]["sms"] == {
        "status": "sent",
        "provider": "twilio",
        "recipient": "+44********23",
    }
    body = finished.body()
    assert json.loads(body)["id"] == finished.id
    for value in PERSONAL:
        assert value not in body


def test_event_ids_are_stable_for_the_same_change_and_differ_between_changes(stream):
    store = stream.store
    store.update_channel(NID, "email", ChannelStatus.SENT)
    store.finish(NID, NotificationStatus.DELIVERED, None)
    records = stream()
    first, again = events_of(records), events_of(records)  # a stream batch handed over twice
    assert [event.id for event in first] == [event.id for event in again]
    assert len({event.id for event in first}) == len(first) == 2

    # A later final status (a refund after the end) is a new event with its own id
    store.compensate(
        NID,
        Compensation(
            channel="email",
            reason="bounced",
            refund_id="re_1",
            refund_status="succeeded",
            payment_intent_id="pi_1",
        ),
    )
    compensated = [event for event in events_of(stream()) if event.type == FINISHED]
    assert [event.data["status"] for event in compensated] == ["compensated"]
    assert compensated[0].id not in {event.id for event in first}


def test_items_that_are_not_a_notification_give_no_event(stream):
    stream()
    stream.store.link_payment_intent(NID, "pi_9")
    stream.store.add_event(NID, _timeline_event())
    assert events_of(stream()) == []


def _timeline_event():
    from tidings.notifications.models import TimelineEvent

    return TimelineEvent(step="ChargePayment", outcome="succeeded", at="2026-12-02T00:00:00.000Z")
