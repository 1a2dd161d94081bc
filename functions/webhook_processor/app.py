"""Webhook queue consumer: applies each verified provider event once, reporting partial batch failures.

Dedupe: Powertools idempotency keyed by (provider, event id, notification id) in WEBHOOK_EVENTS_TABLE. A
replayed or concurrently redelivered event finds the record and has no second effect; a failure
releases the record so the redelivery (or, after the last try, the DLQ) gets the event.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.typing import LambdaContext

from tidings.observability import logger, metrics, tracer
from tidings.webhooks.compensation import RefundCompensator
from tidings.webhooks.ledger import DynamoNotificationLedger
from tidings.webhooks.models import WebhookEvent
from tidings.webhooks.processor import ProcessingOutcome, apply_webhook_event
from tidings.webhooks.redelivery import SoonerRedelivery
from tidings.webhooks.settings import processor_settings
from tidings.webhooks.sfn import StepFunctionsSagaResumer

settings = processor_settings()
# A batch whose every record failed is reported record by record too (same effect on SQS, and the
# invocation does not count as a function error).
batch = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

ledger = DynamoNotificationLedger(boto3.resource("dynamodb").Table(settings.notifications_table))
saga = StepFunctionsSagaResumer(boto3.client("stepfunctions"))


def _payment_gateway() -> Any:
    from tidings.providers import get_payment_gateway  # imported only when a refund is due

    return get_payment_gateway()


compensator = RefundCompensator(ledger, _payment_gateway)


def _already_processed(response: dict, record: Any) -> dict:
    """Called instead of processing when the event identity was seen: a replay or a redelivery."""
    logger.info(
        "webhook already processed", event_id=response.get("event_id"), provider=response.get("provider")
    )
    metrics.add_metric(name="WebhookDuplicate", unit=MetricUnit.Count, value=1)
    return response


# The identity includes the correlation: the same provider event reaching us once without our
# notification id (e.g. an account-wide Twilio callback) must not swallow the correlated delivery.
idempotency = IdempotencyConfig(
    event_key_jmespath="[provider, event_id, notification_id]",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=settings.dedupe_ttl_seconds,
    response_hook=_already_processed,
)


@idempotent_function(
    data_keyword_argument="event",
    persistence_store=DynamoDBPersistenceLayer(table_name=settings.dedupe_table),
    config=idempotency,
)
def process_event(event: WebhookEvent) -> dict:
    outcome: ProcessingOutcome = apply_webhook_event(event, ledger, saga, compensator)
    logger.info("webhook applied", provider=event.provider, event_id=event.event_id, actions=outcome.actions)
    for action in outcome.actions:
        metrics.add_metric(name=f"Webhook{action.title().replace('_', '')}", unit=MetricUnit.Count, value=1)
    return outcome.model_dump()


@cache
def _redelivery() -> SoonerRedelivery:
    return SoonerRedelivery(boto3.client("sqs"), settings.queue_url)  # built on first need only


def record_handler(record: SQSRecord) -> dict:
    try:
        return process_event(event=WebhookEvent.model_validate_json(record.body))
    except IdempotencyAlreadyInProgressError:
        # Another container is applying this very event (a provider retry, the same report sent twice).
        # This copy still fails, since acknowledging it would lose the event if the first attempt then
        # failed, but it comes back in seconds, finds the event done and is acknowledged as a duplicate.
        _redelivery().after(record.receipt_handle, settings.in_progress_retry_seconds)
        logger.info("webhook in progress elsewhere", message_id=record.message_id)
        metrics.add_metric(name="WebhookInProgressElsewhere", unit=MetricUnit.Count, value=1)
        raise
    except Exception as exc:
        # The record goes back to the queue (then the DLQ); say which one and why, never its content.
        logger.warning(
            "webhook processing failed",
            message_id=record.message_id,
            receive_count=record.attributes.approximate_receive_count,
            error_type=type(exc).__name__,
        )
        metrics.add_metric(name="WebhookProcessingFailed", unit=MetricUnit.Count, value=1)
        raise


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    idempotency.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=batch, context=context
    )
