"""StartBulkNotifications: start the sagas of queued bulk items at the pace the event source allows.

The SQS event source's MaximumConcurrency and batch size bound how fast executions start; inside each
saga the provider layer's shared token buckets and the state machine's RateLimited retries keep every
provider call within its account limit.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel

from tidings.api.service import get_service
from tidings.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)


class QueuedNotification(BaseModel):
    notification_id: str


def _start(record: SQSRecord) -> None:
    queued = QueuedNotification.model_validate_json(record.body)
    execution_arn = get_service().start_queued(queued.notification_id)
    logger.debug("bulk item started", notification_id=queued.notification_id, execution_arn=execution_arn)
    metrics.add_metric(name="BulkItemStarted", unit="Count", value=1)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=_start, processor=processor, context=context)
