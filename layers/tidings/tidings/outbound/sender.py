"""SendCallback's domain: sign each queued event the Standard Webhooks way and POST it to the shop.

At least once: a message leaves the callback queue only after the shop answered 2xx. Any other answer,
or none, fails the record (``batchItemFailures``) and the message comes back after the configured
exponential delay (``SenderSettings.delay_after``, set with ``ChangeMessageVisibility``); the try that
makes ``CALLBACK_MAX_ATTEMPTS`` lets it come back at once, and SQS then moves it to the dead-letter
queue (the queue's maxReceiveCount is that same number). Every try carries the same ``webhook-id``
and a fresh ``webhook-timestamp``, signed with each key in use (during a roll: the new one and the
previous one until its ``previous_valid_until``).

Logs name the event id, type, try, status code and the endpoint's host; never the URL's path or query
(they may hold the shop's token) nor the body.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, ValidationError

from tidings.errors import ProviderError
from tidings.observability import logger, metrics
from tidings.outbound import signing
from tidings.outbound.errors import CallbackNotAccepted, CallbackUnreachable
from tidings.outbound.settings import SenderSettings
from tidings.outbound.urls import CallbackUrlRefused, check_callback_url, host_list

USER_AGENT = "Tidings-Webhooks/1.0"
SIGNING_SECRET_FIELD = "signing_secret"


class CallbackMessage(BaseModel):
    """The callback queue's message body, as PublishStatusEvents writes it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    webhook_id: str
    type: str
    url: str
    body: str


def secrets_in_use(secret: Mapping[str, Any], *, now: float) -> list[str]:
    """The signing secrets to sign with: the current one, and the previous one while its roll lasts."""
    found = [str(secret.get(SIGNING_SECRET_FIELD) or "")]
    previous = secret.get(f"previous_{SIGNING_SECRET_FIELD}")
    valid_until = secret.get("previous_valid_until")
    if previous and valid_until is not None and now < float(valid_until):
        found.append(str(previous))
    return found


@dataclass
class CallbackSender:
    settings: SenderSettings
    http: Callable[[], Any]  # an httpx.Client, built on first use
    signing_secret: Callable[[], Mapping[str, Any]]  # the secret's JSON (cached by the credential store)
    redeliver_after: Callable[[str, int], bool]  # (receipt handle, seconds): SoonerRedelivery.after
    clock: Callable[[], float] = time.time

    def handle(self, records: list[Mapping[str, Any]]) -> dict[str, list[dict[str, str]]]:
        """One SQS batch; the failed records' ids (``ReportBatchItemFailures``)."""
        failures = []
        for record in records:
            if not self._one(record):
                failures.append({"itemIdentifier": str(record["messageId"])})
        return {"batchItemFailures": failures}

    def _one(self, record: Mapping[str, Any]) -> bool:
        attempt = int((record.get("attributes") or {}).get("ApproximateReceiveCount", 1))
        try:
            message = CallbackMessage.model_validate(json.loads(record["body"]))
        except (ValueError, ValidationError):
            # Trying again cannot help: it comes back at once until SQS moves it to the dead-letter queue.
            logger.error("callback message malformed", message_id=record.get("messageId"))
            self.redeliver_after(str(record["receiptHandle"]), 0)
            return False
        try:
            status = self.deliver(message)
        except (ProviderError, CallbackUrlRefused, signing.SigningSecretInvalid) as error:
            self._failed(record, message, attempt, error)
            return False
        logger.info(
            "callback delivered",
            webhook_id=message.webhook_id,
            event_type=message.type,
            attempt=attempt,
            status=status,
            host=urlsplit(message.url).hostname,
        )
        metrics.add_metric(name="CallbackDelivered", unit=MetricUnit.Count, value=1)
        return True

    def deliver(self, message: CallbackMessage) -> int:
        """One signed POST; the status code of a 2xx answer, else a typed error."""
        import httpx

        check_callback_url(message.url, host_list(self.settings.callback_http_allowed_hosts))
        now = self.clock()
        headers = signing.sign(
            secrets_in_use(self.signing_secret(), now=now), message.webhook_id, int(now), message.body
        )
        headers |= {"content-type": "application/json", "user-agent": USER_AGENT}
        try:
            response = self.http().post(
                message.url,
                content=message.body.encode(),
                headers=headers,
                timeout=self.settings.timeout_seconds,
            )
        except httpx.TimeoutException:
            raise CallbackUnreachable("no answer in time", provider="callback") from None
        except httpx.TransportError as exc:
            raise CallbackUnreachable(
                f"connection failed: {type(exc).__name__}", provider="callback"
            ) from None
        if not 200 <= response.status_code < 300:
            raise CallbackNotAccepted(
                "the endpoint did not accept the event", provider="callback", status=response.status_code
            )
        return int(response.status_code)

    def _failed(
        self, record: Mapping[str, Any], message: CallbackMessage, attempt: int, error: Exception
    ) -> None:
        last = attempt >= self.settings.max_attempts or isinstance(error, CallbackUrlRefused)
        delay = 0 if last else self.settings.delay_after(attempt)
        self.redeliver_after(str(record["receiptHandle"]), delay)
        fields: dict[str, Any] = {
            "webhook_id": message.webhook_id,
            "event_type": message.type,
            "attempt": attempt,
            "max_attempts": self.settings.max_attempts,
            "error_type": type(error).__name__,
            "status": getattr(error, "status", None),
            "host": urlsplit(message.url).hostname,
        }
        if last:
            logger.error("callback given up: to the dead-letter queue", **fields)
            metrics.add_metric(name="CallbackDeadLettered", unit=MetricUnit.Count, value=1)
        else:
            logger.warning("callback failed: tried again later", retry_in_seconds=delay, **fields)
            metrics.add_metric(name="CallbackRetried", unit=MetricUnit.Count, value=1)
