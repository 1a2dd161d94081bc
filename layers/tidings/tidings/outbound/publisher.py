"""PublishStatusEvents' domain: stream records in, EventBridge events and queued callbacks out.

Every event goes to the stack's bus (``source`` ``tidings``, detail-type ``Notification Finished`` or
``Notification Channel Updated``, detail the callback's body). An event of a notification with a
``callback_url``, or of any notification when the stack has a default callback URL, is also queued on
the callback queue, where SendCallback signs and POSTs it. A batch that cannot be fully written raises
``StatusEventsNotPublished``: the stream hands the batch over again, and since event ids are derived
from what happened, a receiver sees duplicates it can drop, never a gap.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tidings.observability import logger
from tidings.outbound.errors import StatusEventsNotPublished
from tidings.outbound.events import DETAIL_TYPES, StatusEvent, events_for_stream_record

#: PutEvents and SendMessageBatch take ten entries per call.
_CHUNK = 10


def callback_message(event: StatusEvent, url: str) -> dict[str, Any]:
    return {"webhook_id": event.id, "type": event.type, "url": url, "body": event.body()}


@dataclass(frozen=True)
class Published:
    """What one batch gave: events put on the bus, callbacks queued."""

    events: int
    callbacks: int


@dataclass
class StatusEventPublisher:
    events: Callable[[], Any]  # boto3 EventBridge client, built on first use
    sqs: Callable[[], Any]
    event_bus_name: str
    callback_queue_url: str
    default_callback_url: str | None = None
    source: str = "tidings"

    def publish_stream(self, records: Iterable[Mapping[str, Any]]) -> Published:
        """Publish the events of a batch of stream records."""
        return self.publish([event for record in records for event in events_for_stream_record(record)])

    def publish(self, found: list[StatusEvent]) -> Published:
        if not found:
            return Published(0, 0)
        self._put_events(found)
        queued = [
            callback_message(event, url)
            for event in found
            if (url := event.callback_url or self.default_callback_url)
        ]
        self._queue(queued)
        logger.info(
            "status events published",
            events=len(found),
            callbacks=len(queued),
            notification_ids=sorted({str(event.data["notification_id"]) for event in found}),
        )
        return Published(len(found), len(queued))

    def _put_events(self, found: list[StatusEvent]) -> None:
        client = self.events()
        for start in range(0, len(found), _CHUNK):
            entries = [
                {
                    "Source": self.source,
                    "DetailType": DETAIL_TYPES[event.type],
                    "Detail": event.body(),
                    "EventBusName": self.event_bus_name,
                    "Resources": [],
                }
                for event in found[start : start + _CHUNK]
            ]
            answer = client.put_events(Entries=entries)
            if answer.get("FailedEntryCount"):
                raise StatusEventsNotPublished(
                    f"{answer['FailedEntryCount']} of {len(entries)} events not put", provider="eventbridge"
                )

    def _queue(self, messages: list[dict[str, Any]]) -> None:
        client = self.sqs()
        for start in range(0, len(messages), _CHUNK):
            chunk = messages[start : start + _CHUNK]
            entries = [
                {"Id": str(index), "MessageBody": json.dumps(message)} for index, message in enumerate(chunk)
            ]
            answer = client.send_message_batch(QueueUrl=self.callback_queue_url, Entries=entries)
            if answer.get("Failed"):
                raise StatusEventsNotPublished(
                    f"{len(answer['Failed'])} of {len(entries)} callbacks not queued", provider="sqs"
                )
