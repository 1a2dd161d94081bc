"""The webhook processor's composition root: applies each verified provider event once.

``WebhookConsumer(settings).handle(event, context)`` is all ``functions/webhook_processor`` calls.

Dedupe: Powertools idempotency keyed by (provider, event id, notification id) in WEBHOOK_EVENTS_TABLE. A
replayed or concurrently redelivered event finds the record and has no second effect; a failure
releases the record so the redelivery (or, after the last try, the DLQ) gets the event. Partial batch
failures are reported record by record. Clients are built on first use, once per container.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from tidings.observability import logger, metrics
from tidings.webhooks.models import WebhookEvent
from tidings.webhooks.processor import ProcessingOutcome, apply_webhook_event
from tidings.webhooks.settings import ProcessorSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    from tidings.queues import SoonerRedelivery
    from tidings.saga.callbacks import TaskTokenResumer
    from tidings.webhooks.compensation import RefundCompensator
    from tidings.webhooks.ledger import DynamoNotificationLedger

#: The prefix of every dedupe record's key since the handler module (``app``) held ``process_event``;
#: keeping it means no identity remembered before this code moved into the layer is forgotten.
_RECORD_KEY_FUNCTION = "app.process_event"


def _payment_gateway() -> Any:
    from tidings.providers import get_payment_gateway  # imported only when a refund is due

    return get_payment_gateway()


def _already_processed(response: ProcessingOutcome, idempotent_data: Any) -> ProcessingOutcome:
    """Called instead of processing when the event identity was seen: a replay or a redelivery."""
    logger.info("webhook already processed", event_id=response.event_id, provider=response.provider)
    metrics.add_metric(name="WebhookDuplicate", unit=MetricUnit.Count, value=1)
    return response


class WebhookConsumer:
    """The webhook queue's consumer for one container."""

    def __init__(self, settings: ProcessorSettings) -> None:
        self.settings = settings
        # A batch whose every record failed is reported record by record too (same effect on SQS, and
        # the invocation does not count as a function error).
        self.batch = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self._context: LambdaContext | None = None

    def handle(self, event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        self._context = context
        return process_partial_response(
            event=event, record_handler=self.record_handler, processor=self.batch, context=context
        )

    def record_handler(self, record: SQSRecord) -> ProcessingOutcome:
        try:
            event = WebhookEvent.model_validate_json(record.body)
            # The request id of the API call behind the event, on every log line of its processing.
            logger.append_keys(api_request_id=event.request_id)
            outcome: ProcessingOutcome = self.process_event(event=event)
            return outcome
        except Exception as exc:
            self._failed(record, exc)
            raise

    def _failed(self, record: SQSRecord, exc: Exception) -> None:
        # Imported here: the idempotency package loads boto3 and its DynamoDB layer with it.
        from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

        if isinstance(exc, IdempotencyAlreadyInProgressError):
            # Another container is applying this very event (a provider retry, the same report sent
            # twice). This copy still fails, since acknowledging it would lose the event if the first
            # attempt then failed, but it comes back in seconds, finds the event done and is acknowledged
            # as a duplicate.
            self.redelivery.after(record.receipt_handle, self.settings.in_progress_retry_seconds)
            logger.info("webhook in progress elsewhere", message_id=record.message_id)
            metrics.add_metric(name="WebhookInProgressElsewhere", unit=MetricUnit.Count, value=1)
            return
        # The record goes back to the queue (then the DLQ); say which one and why, never its content.
        logger.warning(
            "webhook processing failed",
            message_id=record.message_id,
            receive_count=record.attributes.approximate_receive_count,
            error_type=type(exc).__name__,
        )
        metrics.add_metric(name="WebhookProcessingFailed", unit=MetricUnit.Count, value=1)

    def _apply(self, event: WebhookEvent) -> ProcessingOutcome:
        outcome: ProcessingOutcome = apply_webhook_event(event, self.ledger, self.saga, self.compensator)
        logger.info(
            "webhook applied", provider=event.provider, event_id=event.event_id, actions=outcome.actions
        )
        for action in outcome.actions:
            name = f"Webhook{action.title().replace('_', '')}"
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        return outcome

    # --- collaborators, built on first use (tests replace them) ----------------------------------
    @cached_property
    def idempotency(self) -> IdempotencyConfig:
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

        # The identity includes the correlation: the same provider event reaching us once without our
        # notification id (e.g. an account-wide Twilio callback) must not swallow the correlated one.
        return IdempotencyConfig(
            event_key_jmespath="[provider, event_id, notification_id]",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=self.settings.dedupe_ttl_seconds,
            response_hook=_already_processed,
        )

    @cached_property
    def process_event(self) -> Callable[..., ProcessingOutcome]:
        """``_apply`` once per event identity (Powertools idempotency; its table is first touched on a
        record, which keeps the outcome as JSON)."""
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            idempotent_function,
        )
        from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer

        once: Callable[..., ProcessingOutcome] = idempotent_function(
            data_keyword_argument="event",
            persistence_store=DynamoDBPersistenceLayer(table_name=self.settings.dedupe_table),
            config=self.idempotency,
            output_serializer=PydanticSerializer(ProcessingOutcome),
            key_prefix=f"{self.settings.function_name}.{_RECORD_KEY_FUNCTION}",
        )(self._apply)

        def process(*, event: WebhookEvent) -> ProcessingOutcome:
            if self._context is not None:
                # An in-progress record then expires with the invocation instead of after the full TTL.
                self.idempotency.register_lambda_context(self._context)
            return once(event=event)

        return process

    @cached_property
    def ledger(self) -> DynamoNotificationLedger:
        import boto3

        from tidings.notifications.store import NotificationStore
        from tidings.webhooks.ledger import DynamoNotificationLedger

        table = boto3.resource("dynamodb").Table(self.settings.notifications_table)
        return DynamoNotificationLedger(NotificationStore(table))

    @cached_property
    def saga(self) -> TaskTokenResumer:
        import boto3

        from tidings.saga.callbacks import TaskTokenResumer

        return TaskTokenResumer(lru_cache(maxsize=1)(lambda: boto3.client("stepfunctions")))

    @cached_property
    def compensator(self) -> RefundCompensator:
        from tidings.webhooks.compensation import RefundCompensator

        return RefundCompensator(self.ledger, _payment_gateway)

    @cached_property
    def redelivery(self) -> SoonerRedelivery:
        import boto3

        from tidings.queues import SoonerRedelivery

        return SoonerRedelivery(boto3.client("sqs"), self.settings.queue_url)
