"""Webhook queue consumer: applies each verified provider event once, reporting partial batch failures.

Dedupe by (provider, event id, notification id), the saga's resumption after 3-D Secure, delivery
statuses and compensation for a required channel that failed for good: all in
``tidings.webhooks.consumer.WebhookConsumer`` over the domain in ``tidings.webhooks.processor``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tidings.observability import logger, metrics, tracer
from tidings.webhooks.consumer import WebhookConsumer
from tidings.webhooks.settings import processor_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

# Cold start: a missing or bad variable fails here with a ConfigurationError that names it.
consumer = WebhookConsumer(processor_settings())


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consumer.handle(event, context)
