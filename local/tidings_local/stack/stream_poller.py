"""The Lambda service's DynamoDB stream poller, locally: batches, filters, retries, on-failure destination.

moto keeps a table's stream (``StreamSpecification``) and serves it through the DynamoDB Streams API,
but nothing reads it for a function. Here, as the Lambda service does, one poller per mapping reads the
shard in order from ``StartingPosition``, keeps the records its ``FilterCriteria`` match (EventBridge
patterns: exact values, ``prefix``, nested keys), invokes the function with up to ``BatchSize`` of them,
and moves on only once the batch succeeded. A failing batch is retried as it is, up to
``MaximumRetryAttempts``, then described (never its records' content) to the ``OnFailure`` SQS
destination, as AWS does, and skipped.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from tidings_local.stack.lambdas import LambdaRuntime
from tidings_local.stack.template import REGION

log = logging.getLogger(__name__)


@dataclass
class StreamMapping:
    logical_id: str
    function_name: str
    stream_arn: str
    batch_size: int = 100
    starting_position: str = "TRIM_HORIZON"
    maximum_retry_attempts: int = -1  # AWS: -1 is "until the record expires"
    on_failure_queue_arn: str | None = None
    filters: list[dict[str, Any]] = field(default_factory=list)
    enabled: bool = True


def matches(pattern: Any, value: Any) -> bool:
    """An EventBridge pattern (the subset Lambda filters use here) against one record."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(key in value and matches(sub, value[key]) for key, sub in pattern.items())
    if isinstance(pattern, list):
        for option in pattern:
            if isinstance(option, dict) and "prefix" in option:
                if isinstance(value, str) and value.startswith(option["prefix"]):
                    return True
            elif option == value:
                return True
        return False
    return bool(pattern == value)


def kept(record: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
    """Lambda's FilterCriteria: no filter keeps everything, else any one pattern must match."""
    return not filters or any(matches(pattern, record) for pattern in filters)


class StreamPoller:
    """Reads one stream for one function on a thread until ``stop``."""

    def __init__(
        self,
        mapping: StreamMapping,
        runtime: LambdaRuntime,
        streams_client: Any,
        sqs_client: Any,
        idle_seconds: float = 0.2,
        retry_seconds: float = 0.5,
    ) -> None:
        self.mapping = mapping
        self.runtime = runtime
        self.streams = streams_client
        self.sqs = sqs_client
        self.idle_seconds = idle_seconds
        self.retry_seconds = retry_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.batches = 0

    def start(self) -> StreamPoller:
        shards = self.streams.describe_stream(StreamArn=self.mapping.stream_arn)["StreamDescription"][
            "Shards"
        ]
        iterators = [
            self.streams.get_shard_iterator(
                StreamArn=self.mapping.stream_arn,
                ShardId=shard["ShardId"],
                ShardIteratorType=self.mapping.starting_position,
            )["ShardIterator"]
            for shard in shards
        ]
        name = f"stream-poller-{self.mapping.logical_id}"
        self._thread = threading.Thread(target=self._run, args=(iterators,), name=name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self, iterators: list[str]) -> None:
        while not self._stop.is_set():
            busy = False
            for index, iterator in enumerate(iterators):
                try:
                    answer = self.streams.get_records(ShardIterator=iterator, Limit=self.mapping.batch_size)
                except Exception:
                    if self._stop.is_set():
                        return
                    log.exception("stream poller failed", extra={"mapping": self.mapping.logical_id})
                    self._stop.wait(1)
                    continue
                records = [self._record(r) for r in answer.get("Records", [])]
                batch = [r for r in records if kept(r, self.mapping.filters)]
                if records:
                    busy = True
                if batch:
                    try:
                        self.process(batch)
                    except Exception:
                        # The batch is read again from the same place, as a failed invocation would be.
                        log.exception(
                            "stream batch not processed", extra={"mapping": self.mapping.logical_id}
                        )
                        self._stop.wait(self.retry_seconds)
                        continue
                iterators[index] = answer["NextShardIterator"]
            if not busy:
                self._stop.wait(self.idle_seconds)

    def _record(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record as Lambda hands it over (boto3 parsed the creation time: back to epoch seconds)."""
        change = dict(record.get("dynamodb") or {})
        created = change.get("ApproximateCreationDateTime")
        if hasattr(created, "timestamp"):
            change["ApproximateCreationDateTime"] = int(created.timestamp())
        return {**record, "dynamodb": change, "eventSourceARN": self.mapping.stream_arn, "awsRegion": REGION}

    def process(self, batch: list[dict[str, Any]]) -> bool:
        """Invoke until the batch succeeds or its retries are spent; True if it succeeded."""
        tries = 0
        while not self._stop.is_set():
            result = self.runtime.invoke(self.mapping.function_name, {"Records": batch})
            self.batches += 1
            if not result.failed:
                return True
            tries += 1
            limit = self.mapping.maximum_retry_attempts
            if 0 <= limit < tries:
                self._give_up(batch, result)
                return False
            self._stop.wait(self.retry_seconds)
        return False

    def _give_up(self, batch: list[dict[str, Any]], result: Any) -> None:
        first, last = batch[0]["dynamodb"], batch[-1]["dynamodb"]
        log.warning(
            "stream batch given up", extra={"mapping": self.mapping.logical_id, "records": len(batch)}
        )
        if not self.mapping.on_failure_queue_arn:
            return
        # What AWS sends to an on-failure destination: where the batch was, never its records.
        description = {
            "requestContext": {
                "condition": "RetryAttemptsExhausted",
                "functionArn": self.mapping.function_name,
            },
            "responseContext": {"functionError": getattr(result, "error_type", "Unhandled")},
            "DDBStreamBatchInfo": {
                "batchSize": len(batch),
                "streamArn": self.mapping.stream_arn,
                "startSequenceNumber": first.get("SequenceNumber"),
                "endSequenceNumber": last.get("SequenceNumber"),
            },
        }
        name = self.mapping.on_failure_queue_arn.rsplit(":", 1)[-1]
        url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        self.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(description))
