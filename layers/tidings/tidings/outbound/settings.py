"""Settings of the status-event publisher and the callback sender, read once per container."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, model_validator

from tidings.config import TidingsSettings, load
from tidings.outbound.urls import CallbackUrlRefused, check_callback_url, host_list

#: SQS's longest visibility timeout: no try can be put off longer.
MAX_VISIBILITY_SECONDS = 43_200


class PublisherSettings(TidingsSettings):
    """PublishStatusEvents: the stack's bus, the callback queue and the stack's default callback URL."""

    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    event_source: str = Field("tidings", alias="EVENT_SOURCE", min_length=1)
    callback_queue_url: str = Field(alias="CALLBACK_QUEUE_URL", min_length=1)
    #: Where events of notifications without their own ``callback_url`` go (unset: nowhere).
    default_callback_url: str | None = Field(None, alias="DEFAULT_CALLBACK_URL")
    callback_http_allowed_hosts: str | None = Field(None, alias="CALLBACK_HTTP_ALLOWED_HOSTS")

    @model_validator(mode="after")
    def _default_url_allowed(self) -> PublisherSettings:
        if self.default_callback_url is not None:
            try:
                check_callback_url(self.default_callback_url, host_list(self.callback_http_allowed_hosts))
            except CallbackUrlRefused as refused:
                raise ValueError(f"DEFAULT_CALLBACK_URL: {refused.message}") from None
        return self


class SenderSettings(TidingsSettings):
    """SendCallback: the signing secret, the HTTP timeout and the retry schedule.

    Try ``n`` (1-based) that fails is tried again after ``base * rate ** (n - 1)`` seconds (capped by
    ``CALLBACK_RETRY_MAX_DELAY_SECONDS``); after ``CALLBACK_MAX_ATTEMPTS`` tries the message goes to the
    dead-letter queue (the callback queue's maxReceiveCount is the same template parameter).
    """

    callback_secret_arn: str = Field(alias="CALLBACK_SECRET_ARN", min_length=1)
    callback_queue_url: str = Field(alias="CALLBACK_QUEUE_URL", min_length=1)
    max_attempts: int = Field(6, alias="CALLBACK_MAX_ATTEMPTS", ge=1, le=50)
    retry_base_seconds: int = Field(30, alias="CALLBACK_RETRY_BASE_SECONDS", ge=0, le=MAX_VISIBILITY_SECONDS)
    retry_backoff_rate: float = Field(4.0, alias="CALLBACK_RETRY_BACKOFF_RATE", ge=1, le=10)
    retry_max_delay_seconds: int = Field(
        MAX_VISIBILITY_SECONDS, alias="CALLBACK_RETRY_MAX_DELAY_SECONDS", ge=0, le=MAX_VISIBILITY_SECONDS
    )
    timeout_seconds: float = Field(10.0, alias="CALLBACK_TIMEOUT_SECONDS", gt=0, le=60)
    secret_cache_seconds: int = Field(300, alias="CALLBACK_SECRET_CACHE_SECONDS", ge=0)
    callback_http_allowed_hosts: str | None = Field(None, alias="CALLBACK_HTTP_ALLOWED_HOSTS")

    def delay_after(self, attempt: int) -> int:
        """Seconds before the try after failed try ``attempt`` (1-based)."""
        delay = self.retry_base_seconds * self.retry_backoff_rate ** (attempt - 1)
        return int(min(delay, self.retry_max_delay_seconds, MAX_VISIBILITY_SECONDS))


@lru_cache(maxsize=1)
def publisher_settings() -> PublisherSettings:
    return load(PublisherSettings)


@lru_cache(maxsize=1)
def sender_settings() -> SenderSettings:
    return load(SenderSettings)
