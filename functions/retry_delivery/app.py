"""RetryDelivery: later tries of parked messages (the SMS outage queue, redriven e-mails and SMS).

Each try runs the primary provider then its fallback. A failed try makes the message visible again after
a growing delay and is reported as a batch item failure; after the last try the message goes to its
channel's dead-letter queue (or fails the waiting saga, for a required SMS). The wiring is
``tidings.saga.retry_delivery.RetryDeliveryConsumer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tidings.observability import logger, metrics, tracer
from tidings.saga.retry_delivery import RetryDeliveryConsumer
from tidings.saga.settings import redelivery_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

# Cold start: a missing or bad variable fails here with a ConfigurationError that names it.
consumer = RetryDeliveryConsumer(redelivery_settings())


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consumer.handle(event, context)
