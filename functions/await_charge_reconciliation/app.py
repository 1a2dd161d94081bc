"""AwaitChargeReconciliation: keep the task token so ReconcilePayment can resume the saga after an
uncertain charge."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from tidings.observability import logger, metrics, tracer
from tidings.saga.steps import get_steps


class AwaitChargeReconciliationInput(BaseModel):
    notification_id: str
    task_token: str


@logger.inject_lambda_context(correlation_id_path="notification_id")
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=AwaitChargeReconciliationInput)
def lambda_handler(event: AwaitChargeReconciliationInput, context: LambdaContext) -> dict[str, Any]:
    result = get_steps().await_charge_reconciliation(event.notification_id, event.task_token)
    logger.info("uncertain charge waits for reconciliation")
    metrics.add_metric(name="ChargeReconciliationAwaited", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")
