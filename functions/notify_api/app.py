"""The notify API: POST /notifications, GET /notifications/{id}, bulk, and its OpenAPI document.

Thin: the settings are validated at cold start, and ``tidings.api.http.NotifyApi`` holds the routes,
idempotency and the mapping of typed failures to HTTP answers over the domain in ``tidings.api.service``.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tidings.api.http import NotifyApi
from tidings.api.settings import ApiSettings, load
from tidings.observability import logger, metrics, tracer

# Cold start: a missing or bad variable fails here with a ConfigurationError that names it.
api = NotifyApi(load(ApiSettings))


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
# Not in the trace: an answer carries order references and the customer's (masked) contact details.
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return api.handle(event, context)
