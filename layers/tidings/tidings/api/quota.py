"""The per-client quota: a token bucket per JWT subject, shared by every container through DynamoDB.

The same bucket as the providers' account rate limit (``tidings.resilience.rate_limit``), in the same
table (``RATE_LIMIT_TABLE``, item ``quota#<subject>``): ``CLIENT_SENDS_PER_SECOND`` tokens a second up to
``CLIENT_SEND_BURST``. A single send costs one token, a bulk request one per item. Unlike the provider
limiter it never waits: a client over its quota gets ``QuotaExceeded`` at once, which the API answers
429 ``quota_exceeded`` with ``Retry-After``; a bulk request larger than the whole bucket can never fit
and is ``QuotaTooSmall`` (413 ``bulk_exceeds_quota``). If DynamoDB fails the quota fails open and logs,
as the provider limiter does: API Gateway's throttling still stands in front.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tidings.audit.models import subject_key
from tidings.observability import emit_metric, logger
from tidings.resilience.rate_limit import (
    BucketState,
    BucketStore,
    BucketStoreUnavailable,
    TokenBucket,
)


class QuotaExceeded(Exception):
    """The client sent more than its quota allows; it may try again after ``retry_after`` seconds."""

    def __init__(self, requested: int, retry_after: float, bucket: TokenBucket) -> None:
        super().__init__(f"quota exceeded: {requested} requested")
        self.requested = requested
        self.retry_after = retry_after
        self.bucket = bucket

    @property
    def retry_after_seconds(self) -> int:
        """Whole seconds, as ``Retry-After`` carries them (at least 1)."""
        return max(1, math.ceil(self.retry_after))


class QuotaTooSmall(Exception):
    """A bulk request asks for more items than the client's whole bucket holds: waiting cannot help."""

    def __init__(self, requested: int, bucket: TokenBucket) -> None:
        super().__init__(f"{requested} items exceed the quota's burst of {bucket.capacity:g}")
        self.requested = requested
        self.bucket = bucket


@dataclass
class ClientQuota:
    bucket: TokenBucket
    store: BucketStore
    clock: Callable[[], float] = field(default=time.time)

    #: Lost races before the quota gives up for this request and admits it.
    MAX_LOST_RACES = 20

    def take(self, subject: str, count: int = 1) -> None:
        """Take ``count`` tokens from the subject's bucket, or raise QuotaExceeded / QuotaTooSmall."""
        if count > self.bucket.capacity:
            emit_metric("QuotaExceeded")
            raise QuotaTooSmall(count, self.bucket)
        key = f"quota#{subject_key(subject)}"
        try:
            for _attempt in range(self.MAX_LOST_RACES):
                state = self.store.load(key)
                now = self.clock()
                decision = self.bucket.take(state, now, cost=count)
                if not decision.admitted:
                    emit_metric("QuotaExceeded")
                    raise QuotaExceeded(count, decision.wait_seconds, self.bucket)
                version = state.version if state else None
                new_state = BucketState(decision.tokens_left, now, (version or 0) + 1)
                if self.store.save(key, new_state, version):
                    return
        except BucketStoreUnavailable as exc:
            logger.warning("quota store unavailable, admitting request", error=str(exc))
            return
        logger.warning("quota bucket contended, admitting request")


def quota_for(table_name: str | None, per_second: float, burst: int) -> ClientQuota:
    """The quota on ``table_name`` (its boto3 client built on first use), or in memory without a table."""
    from tidings.resilience.rate_limit import DynamoDBBucketStore, InMemoryBucketStore

    bucket = TokenBucket(rate=per_second, capacity=float(burst))
    if not table_name:
        return ClientQuota(bucket, InMemoryBucketStore())
    import boto3

    return ClientQuota(bucket, DynamoDBBucketStore(table_name, boto3.client("dynamodb")))
