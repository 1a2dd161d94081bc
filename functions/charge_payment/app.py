"""ChargePayment: create and confirm the Stripe PaymentIntent for a notification (idempotent by its id)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from tidings.observability import logger, metrics, tracer
from tidings.saga.steps import get_steps


class ChargePaymentInput(BaseModel):
    notification_id: str
    attempt: int = 0


@logger.inject_lambda_context(correlation_id_path="notification_id")
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=ChargePaymentInput)
def lambda_handler(event: ChargePaymentInput, context: LambdaContext) -> dict[str, Any]:
    result = get_steps().charge_payment(event.notification_id, event.attempt)
    logger.info("payment charged", status=result.status, payment_intent_id=result.payment_intent_id)
    metrics.add_metric(name="PaymentCharged", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")
