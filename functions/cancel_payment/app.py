"""CancelPayment: 3-D Secure was not finished in time; cancel the PaymentIntent unless it succeeded."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from tidings.observability import logger, metrics, tracer
from tidings.saga.steps import get_steps


class CancelPaymentInput(BaseModel):
    notification_id: str
    payment_intent_id: str
    attempt: int = 0


@logger.inject_lambda_context(correlation_id_path="notification_id")
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=CancelPaymentInput)
def lambda_handler(event: CancelPaymentInput, context: LambdaContext) -> dict[str, Any]:
    result = get_steps().cancel_payment(event.notification_id, event.payment_intent_id, event.attempt)
    logger.info("payment action timed out", outcome=result.outcome)
    metrics.add_metric(name="PaymentCancelled", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")
