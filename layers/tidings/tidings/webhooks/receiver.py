"""The receiving side: verify a delivery against its raw bytes, then normalise it into events.

No I/O here except through what the caller passes in (keys, a queue), so the whole decision (reject,
ignore, accept) is testable without AWS.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tidings.errors import TransientProviderError
from tidings.webhooks import stripe, twilio
from tidings.webhooks.errors import WebhookSignatureInvalid
from tidings.webhooks.models import (
    Provider,
    WebhookEvent,
    parse_sendgrid_events,
    parse_stripe_event,
    parse_twilio_callback,
)
from tidings.webhooks.request import WebhookRequest

if TYPE_CHECKING:
    from tidings.suppressions.signals import OptOutSignal

PROVIDERS: tuple[Provider, ...] = ("stripe", "sendgrid", "twilio")
#: SQS SendMessageBatch takes at most ten entries.
SQS_BATCH_LIMIT = 10


class WebhookQueueUnavailable(TransientProviderError):
    """Verified events could not be put on the webhook queue; the provider must deliver again."""

    category = "webhook_queue"


class SuppressionListUnavailable(TransientProviderError):
    """A verified opt-out could not be written to the suppression list; the provider must deliver again."""

    category = "suppression_list"


def verify_and_normalise(
    provider: Provider,
    request: WebhookRequest,
    keys: Sequence[str],
    *,
    now: float,
    tolerance: int = 300,
) -> list[WebhookEvent]:
    """Verify first (raises ``WebhookSignatureInvalid``), then parse (raises ``InvalidRequest``).

    Returns the events Tidings acts on; an empty list means "verified, nothing to do".
    """
    if provider == "stripe":
        stripe.verify_stripe_signature(
            request.body, request.header(stripe.SIGNATURE_HEADER), keys, now=now, tolerance=tolerance
        )
        event = parse_stripe_event(request.body, received_at=now)
        return [event] if event else []
    if provider == "sendgrid":
        # Imported here: `cryptography` costs a Stripe or Twilio cold start ~40 ms for nothing.
        from tidings.webhooks import sendgrid

        sendgrid.verify_sendgrid_signature(
            request.body,
            request.header(sendgrid.SIGNATURE_HEADER),
            request.header(sendgrid.TIMESTAMP_HEADER),
            keys,
            now=now,
            tolerance=tolerance,
        )
        return parse_sendgrid_events(request.body, received_at=now)
    if provider == "twilio":
        params = twilio.verify_twilio_signature(
            request.url,
            request.body,
            request.header(twilio.SIGNATURE_HEADER),
            keys,
            content_type=request.header("content-type"),
        )
        if not params:  # a JSON body, bound by bodySHA256: its fields play the form's part
            params = _json_as_params(request.body)
        event = parse_twilio_callback(params, request.query, received_at=now)
        return [event] if event else []
    raise ValueError(f"unknown webhook provider {provider!r}")


def _json_as_params(payload: bytes) -> dict[str, list[str]]:
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(body, Mapping):
        return {}
    return {str(k): [str(v)] for k, v in body.items() if v is not None}


class WebhookQueue:
    """Puts verified events on the webhook SQS queue, ten per request."""

    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url

    def publish(self, events: Sequence[WebhookEvent]) -> None:
        """Send every event or raise ``WebhookQueueUnavailable`` (failed entries are retried once)."""
        for start in range(0, len(events), SQS_BATCH_LIMIT):
            chunk = events[start : start + SQS_BATCH_LIMIT]
            entries = [{"Id": str(i), "MessageBody": e.model_dump_json()} for i, e in enumerate(chunk)]
            for _attempt in range(2):
                try:
                    response = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
                except Exception as exc:  # botocore errors: any of them means "not queued"
                    raise WebhookQueueUnavailable(
                        "webhook queue refused the events", provider="sqs", code=type(exc).__name__
                    ) from exc
                failed_ids = {failure["Id"] for failure in response.get("Failed", [])}
                entries = [entry for entry in entries if entry["Id"] in failed_ids]
                if not entries:
                    break
            if entries:
                raise WebhookQueueUnavailable(
                    "webhook queue refused some events", provider="sqs", code="BatchEntryFailed"
                )


def opt_out_signals(provider: Provider, request: WebhookRequest) -> list[OptOutSignal]:
    """The opt-outs (and opt-ins) a verified delivery carries; call only after verifying it."""
    from tidings.suppressions.signals import sendgrid_signals, twilio_signals

    if provider == "sendgrid":
        return sendgrid_signals(request.body)
    if provider == "twilio":
        try:
            params = twilio.parse_form(request.body)
        except WebhookSignatureInvalid:
            return []
        return twilio_signals(params or _json_as_params(request.body))
    return []
