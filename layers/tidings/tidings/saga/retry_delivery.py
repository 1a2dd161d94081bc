"""RetryDelivery's composition root: later tries of parked messages, one SQS batch at a time.

``RetryDeliveryConsumer(settings).handle(event, context)`` is all ``functions/retry_delivery`` calls.
Each record names a notification and a channel; :class:`~tidings.saga.redelivery.Redelivery` runs one
try (primary provider, then fallback). A failed try makes the message visible again after a growing
delay (:class:`~tidings.queues.SoonerRedelivery`) and is reported as a batch item failure; after the
last try the message goes to its channel's dead-letter queue, or fails the saga waiting on it.
Clients are built on first use, once per container.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from tidings.observability import logger, metrics
from tidings.queues import SoonerRedelivery, queue_name_and_account
from tidings.saga.callbacks import TaskTokenResumer
from tidings.saga.redelivery import ParkedMessage, Redelivery, RedeliveryPolicy
from tidings.saga.settings import RedeliverySettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse


class RetryDeliveryConsumer:
    """The RetryDelivery function for one container."""

    def __init__(self, settings: RedeliverySettings) -> None:
        self.settings = settings
        self.batch = BatchProcessor(event_type=EventType.SQS)
        self._queue_urls: dict[str, str] = {}

    def handle(self, event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        return process_partial_response(
            event=event, record_handler=self.try_once, processor=self.batch, context=context
        )

    def try_once(self, record: SQSRecord) -> None:
        message = ParkedMessage.model_validate_json(record.body)
        tries = int(record.attributes.approximate_receive_count)
        logger.append_keys(
            notification_id=message.notification_id,
            channel=message.channel,
            tries=tries,
            api_request_id=message.request_id,
        )
        queue = SoonerRedelivery(self.sqs, self._queue_url(record.event_source_arn))

        def delay_next_try(seconds: int) -> None:
            queue.after(record.receipt_handle, seconds)

        outcome = self.redelivery.handle(message, tries, delay_next_try)
        logger.info("parked message handled", outcome=outcome)
        name = f"Redelivery{outcome.title().replace('_', '')}"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)

    # --- collaborators, built on first use -------------------------------------------------------
    @cached_property
    def sqs(self) -> Any:
        import boto3

        return boto3.client("sqs")

    @cached_property
    def redelivery(self) -> Redelivery:
        import boto3

        from tidings.saga.steps import get_steps

        settings = self.settings
        return Redelivery(
            steps=get_steps(),
            policy=RedeliveryPolicy(
                max_tries=settings.max_tries,
                base_delay_seconds=settings.base_delay_seconds,
                max_delay_seconds=settings.max_delay_seconds,
            ),
            saga=TaskTokenResumer(lru_cache(maxsize=1)(lambda: boto3.client("stepfunctions"))),
            sqs=lambda: self.sqs,
            dead_letter_queue_urls={
                "email": settings.email_dead_letter_queue_url,
                "sms": settings.sms_dead_letter_queue_url,
            },
        )

    def _queue_url(self, queue_arn: str) -> str:
        """The URL of the queue a record came from, asked of SQS once per queue."""
        if queue_arn not in self._queue_urls:
            name, account = queue_name_and_account(queue_arn)
            answer = self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
            self._queue_urls[queue_arn] = str(answer["QueueUrl"])
        return self._queue_urls[queue_arn]
