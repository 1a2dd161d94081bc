"""RefundPayment: compensate a required channel's failure by refunding the payment (idempotent)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from tidings.observability import logger, metrics, tracer
from tidings.saga.steps import get_steps


class RefundPaymentInput(BaseModel):
    notification_id: str
    attempt: int = 0


@logger.inject_lambda_context(correlation_id_path="notification_id")
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=RefundPaymentInput)
def lambda_handler(event: RefundPaymentInput, context: LambdaContext) -> dict[str, Any]:
    result = get_steps().refund_payment(event.notification_id, attempt=event.attempt)
    logger.info("payment refunded", refund_id=result.refund_id)
    metrics.add_metric(name="PaymentRefunded", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")
