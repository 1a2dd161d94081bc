"""POST /webhooks/{stripe,sendgrid,twilio}: verify, normalise, queue, acknowledge. Nothing else.

No provider call and no saga work happens here: the webhook processor does that from the queue, so a
provider gets its 2xx in milliseconds and a processing failure never turns into a lost delivery.
"""

from __future__ import annotations

import time

import boto3
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters

from tidings.errors import InvalidRequest
from tidings.observability import logger, metrics, tracer
from tidings.webhooks.errors import WebhookSignatureInvalid
from tidings.webhooks.keys import WEBHOOK_KEY_FIELDS, accepted_keys
from tidings.webhooks.receiver import PROVIDERS, WebhookQueue, WebhookQueueUnavailable, verify_and_normalise
from tidings.webhooks.request import WebhookRequest
from tidings.webhooks.settings import receiver_settings

app = APIGatewayHttpResolver()
settings = receiver_settings()
queue = WebhookQueue(boto3.client("sqs"), settings.queue_url)


def _json(status: int, body: dict) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def signing_keys(provider: str, now: float) -> list[str]:
    secret = parameters.get_secret(
        settings.secret_arn(provider), transform="json", max_age=settings.secret_cache_seconds
    )
    return accepted_keys(secret, WEBHOOK_KEY_FIELDS[provider], now=now)


@app.post("/webhooks/<provider>")
def receive(provider: str) -> Response:
    if provider not in PROVIDERS:
        return _json(404, {"message": "not found"})
    metrics.add_dimension(name="Provider", value=provider)
    now = round(time.time(), 3)
    try:
        request = WebhookRequest.from_http_api_event(app.current_event.raw_event)
        events = verify_and_normalise(
            provider, request, signing_keys(provider, now), now=now, tolerance=settings.tolerance_seconds
        )
    except (WebhookSignatureInvalid, ValueError) as exc:
        # ValueError: a body API Gateway marked base64 that is not. Neither tells the caller why.
        reason = exc.reason if isinstance(exc, WebhookSignatureInvalid) else "malformed_body"
        logger.warning("webhook rejected", provider=provider, reason=reason)
        metrics.add_metric(name="WebhookRejected", unit=MetricUnit.Count, value=1)
        return _json(400, {"message": "invalid signature"})
    except InvalidRequest as exc:
        # Genuinely signed but not a payload we understand: a provider change worth an alarm.
        logger.error("webhook payload not understood", provider=provider, field=exc.field)
        metrics.add_metric(name="WebhookMalformed", unit=MetricUnit.Count, value=1)
        return _json(400, {"message": "malformed payload"})

    queue.publish(events)
    metrics.add_metric(name="WebhookAccepted", unit=MetricUnit.Count, value=len(events))
    logger.info("webhook accepted", provider=provider, events=len(events))
    return _json(200, {"received": len(events)})


@app.exception_handler(WebhookQueueUnavailable)
def queue_unavailable(exc: WebhookQueueUnavailable) -> Response:
    # A 5xx makes the provider deliver again later; the processor's dedupe absorbs any duplicate.
    logger.error("webhook not queued", error=exc.to_dict())
    metrics.add_metric(name="WebhookQueueFailed", unit=MetricUnit.Count, value=1)
    return _json(503, {"message": "temporarily unavailable"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
