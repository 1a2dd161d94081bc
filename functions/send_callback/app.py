"""SendCallback: POSTs each queued status event to the shop, signed the Standard Webhooks way.

A record that fails (not 2xx, no answer) is reported in ``batchItemFailures`` and comes back after the
configured exponential delay; after ``CALLBACK_MAX_ATTEMPTS`` tries it lands in the callback
dead-letter queue. The wiring is ``tidings.outbound.composition.get_sender``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tidings.observability import logger, metrics, tracer
from tidings.outbound.composition import get_sender

# Cold start: a missing or bad variable fails here with a ConfigurationError that names it.
sender = get_sender()


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    return sender.handle(event.get("Records") or [])
