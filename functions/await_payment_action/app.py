"""WaitForPaymentAction: keep the task token so the Stripe webhook can resume the saga after 3-D Secure."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from tidings.observability import logger, metrics, tracer
from tidings.saga.steps import get_steps


class AwaitPaymentActionInput(BaseModel):
    notification_id: str
    payment_intent_id: str
    task_token: str


@logger.inject_lambda_context(correlation_id_path="notification_id")
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=AwaitPaymentActionInput)
def lambda_handler(event: AwaitPaymentActionInput, context: LambdaContext) -> dict[str, Any]:
    result = get_steps().await_payment_action(
        event.notification_id, event.payment_intent_id, event.task_token
    )
    logger.info("payment waits for customer action", payment_intent_id=event.payment_intent_id)
    metrics.add_metric(name="PaymentActionAwaited", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")
