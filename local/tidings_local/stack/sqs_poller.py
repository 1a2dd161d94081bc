"""The Lambda service's SQS poller, locally: batches, partial batch failures, redrive by maxReceiveCount.

moto's own SQS event source mapping invokes the function synchronously inside SendMessage, one record
at a time, and ignores ``ReportBatchItemFailures``. Here, as on AWS, pollers receive up to BatchSize
messages (waiting up to MaximumBatchingWindowInSeconds to fill a batch), invoke the function once per
batch and delete only the messages that succeeded. Failed messages stay on the queue and come back after
its VisibilityTimeout; the queue's RedrivePolicy (enforced by moto's SQS on receive, as by SQS itself)
moves a message to the dead-letter queue once it has been received maxReceiveCount times.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any

from tidings_local.stack.deployer import SqsMapping
from tidings_local.stack.lambdas import LambdaRuntime
from tidings_local.stack.template import REGION

log = logging.getLogger(__name__)


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of the event Lambda receives from SQS."""
    attributes = {
        k: v
        for k, v in message.get("Attributes", {}).items()
        if k
        in (
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
            "MessageGroupId",
            "MessageDeduplicationId",
            "SequenceNumber",
            "AWSTraceHeader",
        )
    }
    message_attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value.get("DataType"),
        }
        for name, value in message.get("MessageAttributes", {}).items()
    }
    body = message.get("Body", "")
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def failed_item_ids(response: Any, message_ids: list[str]) -> set[str] | None:
    """The ids a ReportBatchItemFailures response names; None means "treat the whole batch as failed"."""
    if response is None or response == {} or response == "":
        return set()
    if not isinstance(response, dict):
        return set()  # any other success response: the whole batch succeeded
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    ids: set[str] = set()
    for failure in failures:
        item = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not item or item not in message_ids:
            return None  # AWS: a malformed or unknown identifier fails the whole batch
        ids.add(item)
    return ids


class SqsPoller:
    """Polls one mapping's queue with ``max_concurrency`` threads until ``stop``."""

    def __init__(
        self, mapping: SqsMapping, runtime: LambdaRuntime, sqs_client: Any, wait_seconds: int = 3
    ) -> None:
        self.mapping = mapping
        self.runtime = runtime
        self.sqs = sqs_client
        # Long polls end as soon as a message arrives (moto wakes waiting receivers), so a longer wait
        # only means fewer idle ReceiveMessage calls burning the moto server's CPU.
        self.wait_seconds = wait_seconds
        self._stop = threading.Event()
        self._busy = threading.Event()  # set while the queue has messages: extra pollers join in
        self._threads: list[threading.Thread] = []
        self.batches = 0

    def start(self) -> SqsPoller:
        # More pollers than the function has containers would only queue up for a container.
        containers = self.runtime.pool(self.mapping.function_name).spec.max_concurrency
        for index in range(max(1, min(self.mapping.max_concurrency, containers))):
            name = f"sqs-poller-{self.mapping.logical_id}-{index}"
            thread = threading.Thread(target=self._run, args=(index,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, wait: bool = True) -> None:
        """Stop polling; with ``wait``, return once every thread has ended (a long poll in flight ends
        within ``wait_seconds``: telling every poller first and waiting after waits that long once)."""
        self._stop.set()
        if not wait:
            return
        for thread in self._threads:
            thread.join(timeout=self.wait_seconds + 5)

    def _run(self, index: int) -> None:
        # Like Lambda's scaling: one poller always listens; the others join while messages keep coming
        # and go back to waiting once a poll comes back empty (an idle queue costs one long poll).
        while not self._stop.is_set():
            if index > 0 and not self._busy.wait(timeout=1):
                continue
            try:
                messages = self._receive_batch()
                if messages:
                    self._busy.set()
                    self.process(messages)
                elif index > 0:
                    self._busy.clear()
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("sqs poller failed", extra={"mapping": self.mapping.logical_id})
                self._stop.wait(1)

    def _receive_batch(self) -> list[dict[str, Any]]:
        """Up to BatchSize messages: wait for a first one, then keep filling for MaximumBatchingWindow."""
        mapping = self.mapping
        messages: list[dict[str, Any]] = []
        deadline: float | None = None
        while not self._stop.is_set() and len(messages) < mapping.batch_size:
            if deadline is None:
                wait = self.wait_seconds
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                wait = min(self.wait_seconds, max(0, int(remaining)))
            response = self.sqs.receive_message(
                QueueUrl=mapping.queue_url,
                MaxNumberOfMessages=min(10, mapping.batch_size - len(messages)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = response.get("Messages", [])
            messages.extend(received)
            if not messages:
                break  # nothing yet: the caller polls again
            if deadline is None:
                deadline = time.monotonic() + mapping.batching_window
            if not received and wait == 0:
                # moto answers an empty short poll at once; pause briefly rather than spin.
                self._stop.wait(0.05)
        return messages

    def process(self, messages: list[dict[str, Any]]) -> set[str]:
        """Invoke the function with one batch; delete what succeeded. Returns the failed message ids."""
        mapping = self.mapping
        event = {"Records": [sqs_record(m, mapping.queue_arn) for m in messages]}
        ids = [m["MessageId"] for m in messages]
        result = self.runtime.invoke(mapping.function_name, event)
        self.batches += 1
        if result.failed:
            failed: set[str] | None = None
        elif mapping.report_batch_item_failures:
            failed = failed_item_ids(result.json(), ids)
        else:
            failed = set()
        if failed is None:
            failed = set(ids)
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=mapping.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        if failed:
            log.debug(
                "sqs batch left messages for retry",
                extra={"mapping": mapping.logical_id, "failed": len(failed)},
            )
        return failed
