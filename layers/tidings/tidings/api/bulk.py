"""StartBulkNotifications' composition root: start the sagas of queued bulk items.

``BulkStarter(settings).handle(event, context)`` is all ``functions/start_bulk`` calls. Each message
names up to ten notifications, already stored by the notify API (``QueuedNotifications`` is the message
both sides speak). The SQS event source's batch size and MaximumConcurrency bound how fast
executions start; inside each saga the provider layer's shared token buckets and the state machine's
RateLimited retries keep every provider call within its account limit. Starting is idempotent (the
execution name is the notification id), so a message retried after a partial failure never starts a
saga twice. Clients are built on first use, once per container.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from tidings.api.service import NotificationService, QueuedNotifications, service_for
from tidings.api.settings import ServiceSettings
from tidings.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse


class BulkStarter:
    """The bulk queue's consumer for one container."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.batch = BatchProcessor(event_type=EventType.SQS)

    def handle(self, event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        return process_partial_response(
            event=event, record_handler=self.start, processor=self.batch, context=context
        )

    def start(self, record: SQSRecord) -> None:
        queued = QueuedNotifications.model_validate_json(record.body)
        logger.append_keys(api_request_id=queued.request_id)
        for notification_id in queued.notification_ids:
            self.service.start_queued(notification_id)
        logger.debug("bulk items started", count=len(queued.notification_ids))
        metrics.add_metric(name="BulkItemStarted", unit=MetricUnit.Count, value=len(queued.notification_ids))

    @cached_property
    def service(self) -> NotificationService:
        return service_for(self.settings)
