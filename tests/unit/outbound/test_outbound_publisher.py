"""PublishStatusEvents on fakes: every event to the bus, callbacks queued where a URL applies, and a
batch that cannot be written fails whole (the stream hands it over again)."""

import json

import pytest

from tidings.config import ConfigurationError
from tidings.outbound.errors import StatusEventsNotPublished
from tidings.outbound.events import StatusEvent
from tidings.outbound.publisher import StatusEventPublisher
from tidings.outbound.settings import PublisherSettings, load

pytestmark = pytest.mark.unit


class FakeEvents:
    def __init__(self, failed: int = 0) -> None:
        self.entries: list[dict] = []
        self.failed = failed

    def put_events(self, Entries):  # noqa: N803 - boto3's own argument name
        self.entries.extend(Entries)
        return {"FailedEntryCount": self.failed, "Entries": [{} for _ in Entries]}


class FakeSqs:
    def __init__(self, failed: bool = False) -> None:
        self.bodies: list[dict] = []
        self.failed = failed

    def send_message_batch(self, QueueUrl, Entries):  # noqa: N803
        self.bodies.extend(json.loads(entry["MessageBody"]) for entry in Entries)
        return {"Failed": [{"Id": "0"}]} if self.failed else {"Successful": []}


def event(n: int, url: str | None = None) -> StatusEvent:
    return StatusEvent(
        id=f"msg_{n}",
        type="notification.finished",
        timestamp="2026-12-02T00:00:00.000Z",
        data={"notification_id": f"n{n}", "status": "delivered"},
        callback_url=url,
    )


def publisher(events, sqs, default=None):
    return StatusEventPublisher(
        events=lambda: events,
        sqs=lambda: sqs,
        event_bus_name="tidings-status",
        callback_queue_url="https://sqs.local/cb",
        default_callback_url=default,
    )


def test_every_event_goes_to_the_bus_and_callbacks_only_where_a_url_applies():
    events, sqs = FakeEvents(), FakeSqs()
    found = [event(n, "https://shop.example.com/hook" if n % 2 else None) for n in range(12)]

    publisher(events, sqs).publish(found)

    assert len(events.entries) == 12
    first = events.entries[0]
    assert (first["Source"], first["DetailType"], first["EventBusName"]) == (
        "tidings",
        "Notification Finished",
        "tidings-status",
    )
    assert json.loads(first["Detail"]) == {
        "id": "msg_0",
        "type": "notification.finished",
        "timestamp": "2026-12-02T00:00:00.000Z",
        "data": {"notification_id": "n0", "status": "delivered"},
    }
    assert [body["webhook_id"] for body in sqs.bodies] == [f"msg_{n}" for n in range(1, 12, 2)]
    assert sqs.bodies[0]["body"] == found[1].body()


def test_the_stacks_default_url_applies_to_notifications_without_their_own():
    sqs = FakeSqs()
    publisher(FakeEvents(), sqs, default="https://default.example.com/cb").publish(
        [event(1), event(2, "https://own.example.com/cb")]
    )
    assert [body["url"] for body in sqs.bodies] == [
        "https://default.example.com/cb",
        "https://own.example.com/cb",
    ]


@pytest.mark.parametrize(
    ("events", "sqs"), [(FakeEvents(failed=1), FakeSqs()), (FakeEvents(), FakeSqs(failed=True))]
)
def test_a_batch_not_fully_written_fails_whole(events, sqs):
    with pytest.raises(StatusEventsNotPublished):
        publisher(events, sqs).publish([event(1, "https://shop.example.com/hook")])


def test_nothing_to_publish_calls_nothing():
    events, sqs = FakeEvents(), FakeSqs()
    publisher(events, sqs).publish_stream([{"eventName": "INSERT", "dynamodb": {}}])
    assert events.entries == sqs.bodies == []


def test_the_default_url_is_checked_at_cold_start_and_named_when_refused():
    base = {"EVENT_BUS_NAME": "bus", "CALLBACK_QUEUE_URL": "https://sqs.local/cb"}
    assert load(PublisherSettings, {**base, "DEFAULT_CALLBACK_URL": "https://shop.example.com/cb"})
    with pytest.raises(ConfigurationError, match="DEFAULT_CALLBACK_URL"):
        load(PublisherSettings, {**base, "DEFAULT_CALLBACK_URL": "http://shop.example.com/cb"})
    local = {
        **base,
        "DEFAULT_CALLBACK_URL": "http://127.0.0.1:9/cb",
        "CALLBACK_HTTP_ALLOWED_HOSTS": "127.0.0.1",
    }
    assert load(PublisherSettings, local).default_callback_url == "http://127.0.0.1:9/cb"
