"""ReconcilePayment: settle payment cases redriven from the compensation dead-letter queue.

Each case is settled with the saga's own idempotency keys by ``tidings.saga.reconcile``; one that still
fails goes back to the dead-letter queue (``CompensationConsumer`` reports it as a batch item failure).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tidings.observability import logger, metrics, tracer
from tidings.saga.reconcile import CompensationConsumer
from tidings.saga.settings import reconcile_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

# Cold start: a missing or bad variable fails here with a ConfigurationError that names it.
consumer = CompensationConsumer(reconcile_settings())


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return consumer.handle(event, context)
