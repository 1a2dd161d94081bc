"""POST /webhooks/{stripe,sendgrid,twilio}: verify, normalise, queue, acknowledge. Nothing else.

Thin: the settings are validated at cold start, and ``tidings.webhooks.http.WebhookReceiverApi`` holds
the route, the signing keys (the one secret cache) and the answers; the webhook processor does the work
from the queue.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from tidings.observability import logger, metrics, tracer
from tidings.webhooks.http import WebhookReceiverApi
from tidings.webhooks.settings import receiver_settings

# Cold start: a missing or bad variable fails here with a ConfigurationError that names it.
api = WebhookReceiverApi(receiver_settings())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return api.handle(event, context)
