"""SweepSagas: every few minutes, publish how many notifications are not final after the allowed time."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tidings.observability import logger, tracer
from tidings.saga.settings import sweep_settings
from tidings.saga.sweep import publish, running_executions, sweep

# Cold start: a missing or bad variable fails here with a ConfigurationError that names it.
settings = sweep_settings()


@lru_cache(maxsize=1)
def _stepfunctions() -> Any:
    import boto3

    return boto3.client("stepfunctions")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    executions = running_executions(_stepfunctions(), settings.state_machine_arn)
    result = sweep(executions, datetime.now(UTC), settings.not_final_after_seconds)
    publish(result)
    if result.not_final:
        logger.warning(
            "notifications not final in time",
            not_final=result.not_final,
            oldest_age_seconds=result.oldest_age_seconds,
            notification_ids=list(result.sample),
        )
    return {
        "running": result.running,
        "not_final": result.not_final,
        "oldest_age_seconds": result.oldest_age_seconds,
    }
