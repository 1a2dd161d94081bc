"""Settings of the webhook Lambdas, read from the environment once per container.

A missing or bad value fails the cold start with ``tidings.config.ConfigurationError`` naming the
variable (see docs/webhooks.md for the list).
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from tidings.config import TidingsSettings, load


class ReceiverSettings(TidingsSettings):
    queue_url: str = Field(alias="WEBHOOK_QUEUE_URL", min_length=1)
    #: The webhook signing keys, one secret per provider: never the API credentials' secrets.
    stripe_signing_secret_arn: str = Field(alias="STRIPE_SIGNING_SECRET_ARN", min_length=1)
    sendgrid_signing_secret_arn: str = Field(alias="SENDGRID_SIGNING_SECRET_ARN", min_length=1)
    twilio_signing_secret_arn: str = Field(alias="TWILIO_SIGNING_SECRET_ARN", min_length=1)
    #: Replay window for signed timestamps (Stripe, SendGrid), seconds. Only the local signed samples in
    #: events/ are invoked with a larger one (events/webhook_receiver_env.json).
    tolerance_seconds: int = Field(300, alias="WEBHOOK_TOLERANCE_SECONDS", gt=0)
    #: How long a signing secret is cached in the container before Secrets Manager is asked again.
    secret_cache_seconds: int = Field(300, alias="WEBHOOK_SECRET_CACHE_SECONDS", ge=0)
    #: Where opt-outs go (Twilio STOP, SendGrid unsubscribe...); unset, they are not recorded.
    suppressions_table: str | None = Field(None, alias="SUPPRESSIONS_TABLE", min_length=1)
    #: Where the opt-outs written here are audited (docs/audit.md); unset, they are only counted.
    audit_table: str | None = Field(None, alias="AUDIT_TABLE", min_length=1)
    audit_retention_days: int = Field(400, alias="AUDIT_RETENTION_DAYS", gt=0)

    def secret_arn(self, provider: str) -> str:
        """The secret holding ``provider``'s webhook signing key."""
        return str(getattr(self, f"{provider}_signing_secret_arn"))


class ProcessorSettings(TidingsSettings):
    notifications_table: str = Field(alias="NOTIFICATIONS_TABLE", min_length=1)
    dedupe_table: str = Field(alias="WEBHOOK_EVENTS_TABLE", min_length=1)
    #: How long an event identity is remembered: longer than any provider's retry schedule
    #: (Stripe retries for up to three days).
    dedupe_ttl_seconds: int = Field(7 * 24 * 3600, alias="WEBHOOK_DEDUPE_TTL_SECONDS", gt=0)
    #: The queue the processor consumes; an event found in flight elsewhere is made visible again
    #: after ``in_progress_retry_seconds`` instead of the queue's long visibility timeout.
    queue_url: str = Field(alias="WEBHOOK_QUEUE_URL", min_length=1)
    in_progress_retry_seconds: int = Field(10, alias="WEBHOOK_IN_PROGRESS_RETRY_SECONDS", ge=0, le=43200)
    #: Set by Lambda; it starts every dedupe record's key (Powertools' own default when unset).
    function_name: str = Field("test-func", alias="AWS_LAMBDA_FUNCTION_NAME", min_length=1)


@lru_cache(maxsize=1)
def receiver_settings() -> ReceiverSettings:
    return load(ReceiverSettings)


@lru_cache(maxsize=1)
def processor_settings() -> ProcessorSettings:
    return load(ProcessorSettings)
