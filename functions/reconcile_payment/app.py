"""ReconcilePayment: settle payment cases redriven from the compensation dead-letter queue.

A case that still fails is reported as a batch item failure; after the retry queue's maxReceiveCount it
returns to the dead-letter queue, whose alarm keeps paging until a person or a later redrive settles it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from tidings.observability import logger, metrics, tracer
from tidings.saga.reconcile import CompensationCase, get_reconciler
from tidings.saga.settings import reconcile_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

# Cold start: a missing or bad variable fails here with a ConfigurationError that names it.
settings = reconcile_settings()
processor = BatchProcessor(event_type=EventType.SQS)


def _settle(record: SQSRecord) -> None:
    case = CompensationCase.model_validate_json(record.body)
    logger.append_keys(notification_id=case.notification_id, kind=case.kind)
    settled = get_reconciler().handle(case)
    logger.info("compensation case settled", outcome=settled.outcome, resumed=settled.resumed)
    metrics.add_metric(name="CompensationSettled", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=_settle, processor=processor, context=context)
