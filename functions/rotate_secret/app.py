"""RotateSecret: Secrets Manager's rotation function for the Stripe, SendGrid and Twilio secrets and the
callbacks' signing secret."""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from tidings.observability import logger, metrics, tracer
from tidings.rotation import get_rotator


class RotationEvent(BaseModel):
    """What Secrets Manager sends for each step of a rotation."""

    SecretId: str
    ClientRequestToken: str
    Step: Literal["createSecret", "setSecret", "testSecret", "finishSecret"]


@logger.inject_lambda_context(correlation_id_path="ClientRequestToken")
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=RotationEvent)
def lambda_handler(event: RotationEvent, context: LambdaContext) -> None:
    get_rotator().run(event.SecretId, event.ClientRequestToken, event.Step)
    if event.Step == "finishSecret":
        metrics.add_metric(name="SecretRotated", unit=MetricUnit.Count, value=1)
