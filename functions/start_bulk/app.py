"""StartBulkNotifications: start the sagas of queued bulk items at the pace the event source allows.

Each message names up to ten notifications (already stored by the notify API); starting is idempotent,
so a retried message never starts a saga twice. The wiring is ``tidings.api.bulk.BulkStarter``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tidings.api.bulk import BulkStarter
from tidings.api.settings import service_settings
from tidings.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

# Cold start: a missing or bad variable fails here with a ConfigurationError that names it.
starter = BulkStarter(service_settings())


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return starter.handle(event, context)
