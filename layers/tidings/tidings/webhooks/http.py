"""The webhook receiver's composition root: verify, normalise, queue, acknowledge. Nothing else.

``WebhookReceiverApi(settings).handle(event, context)`` is all ``functions/webhook_receiver`` calls.
No provider call and no saga work happens here: the webhook processor does that from the queue, so a
provider gets its 2xx in milliseconds and a processing failure never turns into a lost delivery.
Signing keys come from the one secret cache (:class:`tidings.secrets.CredentialStore`); the SQS and
Secrets Manager clients are built on first use, once per container.
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tidings.errors import InvalidRequest
from tidings.observability import logger, metrics
from tidings.secrets import CredentialStore
from tidings.webhooks.errors import WebhookSignatureInvalid
from tidings.webhooks.keys import WEBHOOK_KEY_FIELDS, accepted_keys
from tidings.webhooks.receiver import (
    PROVIDERS,
    SuppressionListUnavailable,
    WebhookQueue,
    WebhookQueueUnavailable,
    opt_out_signals,
    verify_and_normalise,
)
from tidings.webhooks.request import WebhookRequest
from tidings.webhooks.settings import ReceiverSettings


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


class WebhookReceiverApi:
    """``POST /webhooks/{stripe,sendgrid,twilio}`` for one container."""

    def __init__(self, settings: ReceiverSettings) -> None:
        self.settings = settings
        self.app = APIGatewayHttpResolver()
        self.app.post("/webhooks/<provider>")(self.receive)
        self.app.exception_handler(WebhookQueueUnavailable)(self.queue_unavailable)
        self.app.exception_handler(SuppressionListUnavailable)(self.suppressions_unavailable)

    def handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return self.app.resolve(event, context)

    # --- collaborators, built on first use -------------------------------------------------------
    @cached_property
    def credentials(self) -> CredentialStore:
        import boto3

        return CredentialStore(
            ttl_seconds=self.settings.secret_cache_seconds, client=boto3.client("secretsmanager")
        )

    @cached_property
    def queue(self) -> WebhookQueue:
        import boto3

        return WebhookQueue(boto3.client("sqs"), self.settings.queue_url)

    @cached_property
    def suppressions(self) -> Any:
        import boto3

        from tidings.suppressions.service import SuppressionService, audited
        from tidings.suppressions.store import SuppressionStore

        table = boto3.resource("dynamodb").Table(str(self.settings.suppressions_table))
        audit = audited(self.settings.audit_table, self.settings.audit_retention_days)
        return SuppressionService(SuppressionStore(table), audit=audit)

    def record_opt_outs(self, provider: str, request: WebhookRequest) -> None:
        """Write the delivery's opt-outs to the suppression list here, where the address is: the queued
        events never carry one. A failure is a 503, so the provider delivers again."""
        if provider == "stripe" or not self.settings.suppressions_table:
            return
        signals = opt_out_signals(provider, request)  # type: ignore[arg-type]
        if not signals:
            return
        from tidings.suppressions.signals import apply_signals

        try:
            apply_signals(signals, self.suppressions)
        except Exception as exc:  # botocore errors: the list was not written
            raise SuppressionListUnavailable(
                "suppression list refused the opt-out", provider="dynamodb", code=type(exc).__name__
            ) from exc

    def signing_keys(self, provider: str, now: float) -> list[str]:
        secret = self.credentials.secret(provider, self.settings.secret_arn(provider))
        return accepted_keys(secret, WEBHOOK_KEY_FIELDS[provider], now=now)

    # --- routes ----------------------------------------------------------------------------------
    def receive(self, provider: str) -> Response:
        if provider not in PROVIDERS:
            return _json(404, {"message": "not found"})
        metrics.add_dimension(name="Provider", value=provider)
        now = round(time.time(), 3)
        try:
            request = WebhookRequest.from_http_api_event(self.app.current_event.raw_event)
            keys = self.signing_keys(provider, now)
            events = verify_and_normalise(
                provider, request, keys, now=now, tolerance=self.settings.tolerance_seconds
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

        self.record_opt_outs(provider, request)
        self.queue.publish(events)
        metrics.add_metric(name="WebhookAccepted", unit=MetricUnit.Count, value=len(events))
        logger.info("webhook accepted", provider=provider, events=len(events))
        return _json(200, {"received": len(events)})

    def queue_unavailable(self, exc: WebhookQueueUnavailable) -> Response:
        # A 5xx makes the provider deliver again later; the processor's dedupe absorbs any duplicate.
        logger.error("webhook not queued", error=exc.to_dict())
        metrics.add_metric(name="WebhookQueueFailed", unit=MetricUnit.Count, value=1)
        return _json(503, {"message": "temporarily unavailable"})

    def suppressions_unavailable(self, exc: SuppressionListUnavailable) -> Response:
        logger.error("webhook opt-out not recorded", error=exc.to_dict())
        metrics.add_metric(name="WebhookOptOutFailed", unit=MetricUnit.Count, value=1)
        return _json(503, {"message": "temporarily unavailable"})
