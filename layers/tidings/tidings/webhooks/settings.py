"""Settings of the webhook Lambdas, read from the environment once per container.

A missing or bad value fails the cold start naming the variable (see docs/webhooks.md for the list).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class WebhookSettingsError(ValueError):
    """A webhook setting is missing or invalid; the message names the environment variable."""


class ReceiverSettings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    queue_url: str = Field(alias="WEBHOOK_QUEUE_URL", min_length=1)
    stripe_secret_arn: str = Field(alias="STRIPE_SECRET_ARN", min_length=1)
    sendgrid_secret_arn: str = Field(alias="SENDGRID_SECRET_ARN", min_length=1)
    twilio_secret_arn: str = Field(alias="TWILIO_SECRET_ARN", min_length=1)
    #: Replay window for signed timestamps (Stripe, SendGrid), seconds. Only the local signed samples in
    #: events/ are invoked with a larger one (events/webhook_receiver_env.json).
    tolerance_seconds: int = Field(300, alias="WEBHOOK_TOLERANCE_SECONDS", gt=0)
    #: How long a signing secret is cached in the container before Secrets Manager is asked again.
    secret_cache_seconds: int = Field(300, alias="WEBHOOK_SECRET_CACHE_SECONDS", ge=0)

    def secret_arn(self, provider: str) -> str:
        return getattr(self, f"{provider}_secret_arn")


class ProcessorSettings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    notifications_table: str = Field(alias="NOTIFICATIONS_TABLE", min_length=1)
    dedupe_table: str = Field(alias="WEBHOOK_EVENTS_TABLE", min_length=1)
    #: How long an event identity is remembered: longer than any provider's retry schedule
    #: (Stripe retries for up to three days).
    dedupe_ttl_seconds: int = Field(7 * 24 * 3600, alias="WEBHOOK_DEDUPE_TTL_SECONDS", gt=0)
    #: The queue the processor consumes; an event found in flight elsewhere is made visible again
    #: after ``in_progress_retry_seconds`` instead of the queue's long visibility timeout.
    queue_url: str = Field(alias="WEBHOOK_QUEUE_URL", min_length=1)
    in_progress_retry_seconds: int = Field(10, alias="WEBHOOK_IN_PROGRESS_RETRY_SECONDS", ge=0, le=43200)


def _load[T: BaseModel](model: type[T], environ: Mapping[str, str]) -> T:
    try:
        return model.model_validate(dict(environ))
    except ValidationError as exc:
        fields = model.model_fields
        names = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "?"
            names.append(fields[name].alias if name in fields and fields[name].alias else name)
        raise WebhookSettingsError(f"invalid or missing setting(s): {', '.join(sorted(set(names)))}") from exc


@lru_cache(maxsize=1)
def receiver_settings() -> ReceiverSettings:
    return _load(ReceiverSettings, os.environ)


@lru_cache(maxsize=1)
def processor_settings() -> ProcessorSettings:
    return _load(ProcessorSettings, os.environ)
