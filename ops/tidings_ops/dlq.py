"""Dead-letter queues: list what is parked, show one message, redrive it through the path it came from,
or purge it. An operator tool for a deployed stack and the local system alike (``tidings dlq``).

Queues are found by the names CloudFormation gives them (``<stack>-<LogicalId>-<suffix>``; the local
system uses ``<stack>-<LogicalId>``), so the same commands work on AWS and locally. A dead-letter queue's
redrive target is the queue whose RedrivePolicy points at it (SQS ListDeadLetterSourceQueues):

* email        EmailDeadLetterQueue         -> EmailRetryQueue         (RetryDelivery: SendGrid, then SES)
* sms          SmsDeadLetterQueue           -> SmsOutageQueue          (RetryDelivery: Twilio, then SNS)
* compensation CompensationDeadLetterQueue  -> CompensationRetryQueue  (ReconcilePayment)
* bulk         BulkDeadLetterQueue          -> BulkQueue               (StartBulkNotifications)
* webhook      WebhookDeadLetterQueue       -> WebhookQueue            (WebhookProcessor)
* callback     CallbackDeadLetterQueue      -> CallbackQueue           (SendCallback: the shop's endpoint)

Message bodies hold ids and error types only (contact details stay in the notification table); what
is shown still passes the layer's redactor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tidings.observability import redact

DEAD_LETTER_QUEUES = {
    "email": "EmailDeadLetterQueue",
    "sms": "SmsDeadLetterQueue",
    "compensation": "CompensationDeadLetterQueue",
    "bulk": "BulkDeadLetterQueue",
    "webhook": "WebhookDeadLetterQueue",
    "callback": "CallbackDeadLetterQueue",
}


class QueueNotFound(LookupError):
    pass


@dataclass
class DeadLetterQueues:
    sqs: Any
    stack: str

    def url(self, queue: str) -> str:
        """A queue URL from a short name (email), a logical id (EmailDeadLetterQueue) or a URL."""
        if queue.startswith(("http://", "https://")):
            return queue
        logical_id = DEAD_LETTER_QUEUES.get(queue, queue)
        prefix = f"{self.stack}-{logical_id}"
        urls = self.sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
        # The exact local name, or CloudFormation's <stack>-<LogicalId>-<random suffix>.
        matches = [
            url
            for url in urls
            if url.rsplit("/", 1)[-1] in (prefix,) or url.rsplit("/", 1)[-1].startswith(f"{prefix}-")
        ]
        if len(matches) != 1:
            raise QueueNotFound(f"{queue}: {len(matches)} queues named {prefix}[-...] (is --stack right?)")
        return matches[0]

    def summary(self) -> list[dict[str, Any]]:
        rows = []
        for short, logical_id in DEAD_LETTER_QUEUES.items():
            try:
                url = self.url(short)
            except QueueNotFound:
                continue
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            rows.append(
                {
                    "queue": short,
                    "logical_id": logical_id,
                    "messages": int(attributes["ApproximateNumberOfMessages"]),
                    "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
                    "url": url,
                }
            )
        return rows

    def peek(self, queue: str, limit: int = 10) -> list[dict[str, Any]]:
        """Up to ``limit`` messages, described by their ids and error types, left on the queue."""
        return [_describe(message) for message in self._browse(self.url(queue), limit)]

    def show(self, queue: str, message_id: str, scan: int = 100) -> dict[str, Any] | None:
        """One message (of the first ``scan``) with its redacted body, left on the queue; None if absent."""
        for message in self._browse(self.url(queue), scan):
            if message["MessageId"] == message_id:
                body: Any
                try:
                    body = json.loads(message["Body"])
                except ValueError:
                    body = message["Body"]
                return _describe(message) | {
                    "receive_count": int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
                    "body": redact(body),
                }
        return None

    def purge(self, queue: str) -> dict[str, Any]:
        """Delete every message; asking again while SQS is still purging is a no-op, not an error."""
        url = self.url(queue)
        count = self.count(url)
        try:
            self.sqs.purge_queue(QueueUrl=url)
        except self.sqs.exceptions.PurgeQueueInProgress:
            return {"queue": url, "purged": 0, "already_purging": True}
        return {"queue": url, "purged": count, "already_purging": False}

    def count(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def _browse(self, url: str, limit: int) -> list[dict[str, Any]]:
        """Receive up to ``limit`` messages, then make each visible again at once (a peek, not a take)."""
        seen: dict[str, dict[str, Any]] = {}
        handles: list[str] = []
        while len(seen) < limit:
            answer = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, limit - len(seen)),
                VisibilityTimeout=20 if limit > 10 else 0,
                AttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
            )
            messages = answer.get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in seen]
            for message in messages:
                handles.append(message["ReceiptHandle"])
            if not fresh:
                break
            for message in fresh:
                seen[message["MessageId"]] = message
            if limit <= 10:
                break
        if limit > 10:
            for start in range(0, len(handles), 10):
                self.sqs.change_message_visibility_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                        for n, handle in enumerate(handles[start : start + 10])
                    ],
                )
        return list(seen.values())[:limit]

    def redrive_target(self, queue: str) -> str:
        sources = self.sqs.list_dead_letter_source_queues(QueueUrl=self.url(queue)).get("queueUrls", [])
        if len(sources) != 1:
            raise QueueNotFound(f"{queue}: {len(sources)} source queues redrive into it; pass --to")
        return sources[0]

    def redrive(
        self, queue: str, target: str | None = None, limit: int | None = None, dry_run: bool = False
    ) -> dict:
        """Move messages back to the queue they came from; each is deleted only once it was re-sent."""
        source_url = self.url(queue)
        target_url = self.url(target) if target else self.redrive_target(queue)
        moved: list[dict[str, Any]] = []
        while limit is None or len(moved) < limit:
            want = 10 if limit is None else min(10, limit - len(moved))
            answer = self.sqs.receive_message(
                QueueUrl=source_url, MaxNumberOfMessages=want, VisibilityTimeout=60, WaitTimeSeconds=1
            )
            messages = answer.get("Messages", [])
            if not messages:
                break
            if dry_run:
                moved.extend(_describe(message) for message in messages)
                self.sqs.change_message_visibility_batch(
                    QueueUrl=source_url,
                    Entries=[
                        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                        for n, m in enumerate(messages)
                    ],
                )
                break
            sent = self.sqs.send_message_batch(
                QueueUrl=target_url,
                Entries=[{"Id": str(n), "MessageBody": m["Body"]} for n, m in enumerate(messages)],
            )
            done = {entry["Id"] for entry in sent.get("Successful", [])}
            if done:
                self.sqs.delete_message_batch(
                    QueueUrl=source_url,
                    Entries=[
                        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                        for n, m in enumerate(messages)
                        if str(n) in done
                    ],
                )
            moved.extend(_describe(m) for n, m in enumerate(messages) if str(n) in done)
            if len(done) < len(messages):
                break  # what failed to send stays on the dead-letter queue (visible again in 60 s)
        return {
            "from": source_url,
            "to": target_url,
            "moved": len(moved),
            "dry_run": dry_run,
            "messages": moved,
        }


def _describe(message: dict[str, Any]) -> dict[str, Any]:
    try:
        body = json.loads(message["Body"])
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    error_type = error.get("Error") or error.get("error_type")
    sent = message.get("Attributes", {}).get("SentTimestamp")
    return {
        "message_id": message["MessageId"],
        "kind": body.get("kind") or body.get("channel"),
        "notification_id": body.get("notification_id"),
        "error_type": error_type,
        "error_code": error.get("code"),
        "provider": error.get("provider"),
        "tries": body.get("tries"),
        "sent_at": sent,
        "sent": readable_time(sent),
    }


def readable_time(epoch_millis: str | int | None) -> str | None:
    """SQS's SentTimestamp (epoch milliseconds) as ``2026-03-01 10:00:00 UTC``."""
    if epoch_millis in (None, ""):
        return None
    try:
        moment = datetime.fromtimestamp(int(epoch_millis) / 1000, UTC)
    except (TypeError, ValueError, OverflowError):
        return None
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
