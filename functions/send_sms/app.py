"""SendSms / SendSmsViaSns: text the customer through Twilio, or SNS as the fallback."""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from tidings.observability import logger, metrics, tracer
from tidings.saga.steps import get_steps


class SendSmsInput(BaseModel):
    notification_id: str
    provider: Literal["twilio", "sns"]
    attempt: int = 0


@logger.inject_lambda_context(correlation_id_path="notification_id")
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=SendSmsInput)
def lambda_handler(event: SendSmsInput, context: LambdaContext) -> dict[str, Any]:
    result = get_steps().send(event.notification_id, "sms", event.provider, event.attempt)
    metrics.add_dimension(name="provider", value=event.provider)
    if result.skipped:  # not asked for, or the recipient is suppressed: nothing sent
        logger.info("sms skipped", reason=result.skipped)
        return result.model_dump(mode="json")
    logger.info("sms sent", provider=result.provider, provider_message_id=result.provider_message_id)
    metrics.add_metric(name="SmsSent", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")
