"""SweepSagas: every few minutes, publish how many notifications are not final after the allowed time."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import boto3

from tidings.observability import logger, tracer
from tidings.saga.sweep import publish, running_executions, sweep


@lru_cache(maxsize=1)
def _stepfunctions() -> Any:
    return boto3.client("stepfunctions")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    limit = float(os.environ["NOT_FINAL_AFTER_MINUTES"]) * 60
    executions = running_executions(_stepfunctions(), os.environ["STATE_MACHINE_ARN"])
    result = sweep(executions, datetime.now(UTC), limit)
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
