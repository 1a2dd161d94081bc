"""SweepSagas: every few minutes, publish how many notifications are not final after the allowed time.

The counting, the metrics and the operator's log line are ``tidings.saga.sweep.SagaSweeper``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tidings.observability import logger, tracer
from tidings.saga.settings import sweep_settings
from tidings.saga.sweep import SagaSweeper

# Cold start: a missing or bad variable fails here with a ConfigurationError that names it.
sweeper = SagaSweeper(sweep_settings())


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return sweeper.run().model_dump(exclude={"sample"})
