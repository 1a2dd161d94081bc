"""StartBulkNotifications: start the sagas of queued bulk items at the pace the event source allows.

Each message names up to ten notifications (already stored by the notify API). The SQS event source's
batch size and MaximumConcurrency bound how fast executions start; inside each saga the provider layer's
shared token buckets and the state machine's RateLimited retries keep every provider call within its
account limit. Starting is idempotent (the execution name is the notification id), so a message that is
retried after a partial failure never starts a saga twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from tidings.api.service import get_service
from tidings.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

processor = BatchProcessor(event_type=EventType.SQS)


class QueuedNotifications(BaseModel):
    notification_ids: list[str] = Field(min_length=1, max_length=100)


def _start(record: SQSRecord) -> None:
    queued = QueuedNotifications.model_validate_json(record.body)
    service = get_service()
    for notification_id in queued.notification_ids:
        service.start_queued(notification_id)
    logger.debug("bulk items started", count=len(queued.notification_ids))
    metrics.add_metric(name="BulkItemStarted", unit=MetricUnit.Count, value=len(queued.notification_ids))


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=_start, processor=processor, context=context)
