"""RecordOutcome: decide the notification's one final status from what the steps wrote and record it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from tidings.observability import logger, metrics, tracer
from tidings.saga.outcome import OutcomeInput
from tidings.saga.steps import get_steps


@logger.inject_lambda_context(correlation_id_path="notification_id")
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=OutcomeInput)
def lambda_handler(event: OutcomeInput, context: LambdaContext) -> dict[str, Any]:
    outcome = get_steps().record_outcome(event)
    logger.info("notification finished", status=outcome.status.value, reason=outcome.reason)
    metrics.add_dimension(name="status", value=outcome.status.value)
    metrics.add_metric(name="NotificationFinished", unit=MetricUnit.Count, value=1)
    return outcome.model_dump(mode="json")
