"""RetryDelivery: later tries of parked messages (the SMS outage queue, redriven e-mails and SMS).

Each try runs the primary provider then its fallback. A failed try makes the message visible again after
a growing delay (ChangeMessageVisibility) and is reported as a batch item failure; after the last try the
message goes to its channel's dead-letter queue (or fails the waiting saga, for a required SMS).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ConfigDict

from tidings.observability import logger, metrics, tracer
from tidings.saga.redelivery import Redelivery, RedeliveryPolicy
from tidings.saga.settings import redelivery_settings
from tidings.saga.steps import get_steps

processor = BatchProcessor(event_type=EventType.SQS)


class ParkedMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    notification_id: str
    channel: Literal["email", "sms"]
    task_token: str | None = None


@lru_cache(maxsize=1)
def _sqs() -> Any:
    import boto3

    return boto3.client("sqs")


@lru_cache(maxsize=1)
def _redelivery() -> Redelivery:
    import boto3

    settings = redelivery_settings()
    return Redelivery(
        steps=get_steps(),
        policy=RedeliveryPolicy(
            max_tries=settings.max_tries,
            base_delay_seconds=settings.base_delay_seconds,
            max_delay_seconds=settings.max_delay_seconds,
        ),
        stepfunctions=lru_cache(maxsize=1)(lambda: boto3.client("stepfunctions")),
        sqs=_sqs,
        dead_letter_queue_urls={
            "email": settings.email_dead_letter_queue_url,
            "sms": settings.sms_dead_letter_queue_url,
        },
    )


@lru_cache(maxsize=8)
def _queue_url(queue_arn: str) -> str:
    _arn, _aws, _sqs_name, _region, account, name = queue_arn.split(":", 5)
    return _sqs().get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


def _try_once(record: SQSRecord) -> None:
    message = ParkedMessage.model_validate_json(record.body)
    tries = int(record.attributes.approximate_receive_count)
    logger.append_keys(notification_id=message.notification_id, channel=message.channel, tries=tries)

    def delay_next_try(seconds: int) -> None:
        _sqs().change_message_visibility(
            QueueUrl=_queue_url(record.event_source_arn),
            ReceiptHandle=record.receipt_handle,
            VisibilityTimeout=seconds,
        )

    outcome = _redelivery().handle(message.model_dump(exclude_none=True), tries, delay_next_try)
    logger.info("parked message handled", outcome=outcome)
    metrics.add_metric(name=f"Redelivery{outcome.title().replace('_', '')}", unit="Count", value=1)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=_try_once, processor=processor, context=context
    )
