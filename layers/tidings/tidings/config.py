"""The one way the layer reads configuration, and the provider integration layer's own settings.

Every setting is an environment variable (the template sets the deployed values). Each concern has one
pydantic-settings model, a :class:`TidingsSettings`, whose field aliases are the variable names:
:class:`Settings` here (the provider layer, listed in docs/resilience.md), :class:`ObservabilitySettings`,
``api.settings``, ``webhooks.settings``, ``rotation.settings``, ``notifications.settings`` and
``saga.settings``. :func:`load` validates one of them at cold start; a bad or missing value fails with
a :class:`ConfigurationError` that names the variable, instead of failing later inside a call. No other
module of the layer reads ``os.environ``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ProviderName = Literal["stripe", "sendgrid", "twilio"]
PROVIDERS: tuple[ProviderName, ...] = ("stripe", "sendgrid", "twilio")
#: Every service a call goes out to, each with its own account-wide rate: the HTTP providers and the
#: AWS fallbacks (SES's sending quota, SNS's SMS transactions per second).
RateLimitedService = Literal["stripe", "sendgrid", "twilio", "ses", "sns"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ConfigurationError(ValueError):
    """A setting is missing or invalid; the message names the environment variable."""


class TidingsSettings(BaseSettings):
    """Base of every settings model: field aliases are the environment variable names, and an empty
    value (a template parameter left blank) means "not set", not an invalid value."""

    model_config = SettingsConfigDict(
        frozen=True, populate_by_name=True, extra="ignore", case_sensitive=True, env_ignore_empty=True
    )


def load[T: TidingsSettings](model: type[T], environ: Mapping[str, str] | None = None) -> T:
    """Validate the environment (or ``environ``, in tests and local tools) into ``model``.

    The error names every bad or missing variable and what is wrong with it, never the value itself:
    a setting may be a URL with a credential in it.
    """
    try:
        if environ is None:
            return model()  # pydantic-settings reads the process environment
        aliases = {field.alias or name for name, field in model.model_fields.items()}
        return model.model_validate(
            {key: value for key, value in environ.items() if key in aliases and value != ""}
        )
    except ValidationError as exc:
        fields = model.model_fields
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "settings"
            variable = fields[name].alias or name if name in fields else name
            problems.append(f"{variable}: {error['msg']}")
        raise ConfigurationError(
            f"invalid configuration ({model.__name__}): " + "; ".join(problems)
        ) from None


class ObservabilitySettings(TidingsSettings):
    """What the logger, tracer and metrics are named by (the template's Globals set both)."""

    service_name: str = Field("tidings", min_length=1, alias="POWERTOOLS_SERVICE_NAME")
    metrics_namespace: str = Field("Tidings", min_length=1, alias="POWERTOOLS_METRICS_NAMESPACE")


class ProviderSettings(BaseModel):
    """What one HTTP provider client needs: where it lives, its credentials and its account rate."""

    model_config = ConfigDict(frozen=True)

    name: ProviderName
    base_url: str
    secret_arn: str
    rate_per_second: float
    burst: float


class BreakerSettings(BaseModel):
    """The circuit breaker's thresholds: one model, so any source (environment, live configuration) can
    supply them under these field names (docs/resilience.md, circuit breaker).

    The breaker opens when, over the last ``window_seconds`` (counted in ``window_buckets`` buckets), at
    least ``minimum_calls`` calls were made and at least ``error_threshold_percent`` of them failed
    transiently; after ``recovery_seconds`` one probe at a time is let through, and
    ``probe_successes`` successful probes in a row close it.
    """

    model_config = ConfigDict(frozen=True)

    error_threshold_percent: float = Field(30.0, gt=0, le=100)
    minimum_calls: int = Field(20, ge=1)
    window_seconds: int = Field(60, ge=1)
    window_buckets: int = Field(6, ge=1, le=60)
    recovery_seconds: int = Field(30, ge=1)
    probe_successes: int = Field(1, ge=1)
    cache_seconds: int = Field(5, ge=0)

    @property
    def bucket_seconds(self) -> float:
        return self.window_seconds / self.window_buckets


class RateLimitSettings(BaseModel):
    """One service's account-wide token bucket, and how it reacts to the provider's own headroom.

    ``rate_per_second`` tokens per second up to ``burst`` banked. When the provider reports (rate-limit
    headers, SES's sending quota) less than ``slowdown_below_percent`` of its limit left, the shared
    bucket slows to what is left spread over the time until the provider's reset, never faster than
    ``rate_per_second``.
    """

    model_config = ConfigDict(frozen=True)

    service: RateLimitedService
    rate_per_second: float = Field(gt=0)
    burst: float = Field(gt=0)
    slowdown_below_percent: float = Field(20.0, ge=0, le=100)


class Settings(TidingsSettings):
    """The provider integration layer: providers, shared state tables, timeouts, retries, breaker."""

    # --- providers ---------------------------------------------------------------------------
    stripe_api_base_url: str = Field("https://api.stripe.com", alias="STRIPE_API_BASE_URL")
    sendgrid_api_base_url: str = Field("https://api.sendgrid.com", alias="SENDGRID_API_BASE_URL")
    twilio_api_base_url: str = Field("https://api.twilio.com", alias="TWILIO_API_BASE_URL")
    stripe_secret_arn: str | None = Field(None, alias="STRIPE_SECRET_ARN")
    sendgrid_secret_arn: str | None = Field(None, alias="SENDGRID_SECRET_ARN")
    twilio_secret_arn: str | None = Field(None, alias="TWILIO_SECRET_ARN")
    stripe_rate_per_second: float = Field(25.0, gt=0, alias="STRIPE_RATE_PER_SECOND")
    sendgrid_rate_per_second: float = Field(50.0, gt=0, alias="SENDGRID_RATE_PER_SECOND")
    twilio_rate_per_second: float = Field(10.0, gt=0, alias="TWILIO_RATE_PER_SECOND")
    # SES's starting production sending quota is 14 messages/s; SNS's SMS default is 20 publishes/s.
    # SES's rate is read from its GetSendQuota (cached TIDINGS_SES_QUOTA_TTL_SECONDS, 0: never read);
    # SES_RATE_PER_SECOND is the rate when the quota cannot be read.
    ses_rate_per_second: float = Field(14.0, gt=0, alias="SES_RATE_PER_SECOND")
    ses_quota_ttl_seconds: int = Field(300, ge=0, alias="TIDINGS_SES_QUOTA_TTL_SECONDS")
    sns_rate_per_second: float = Field(20.0, gt=0, alias="SNS_RATE_PER_SECOND")
    # Bucket capacity in seconds of rate: 1.0 lets a burst of one second's worth of requests through.
    rate_limit_burst_seconds: float = Field(1.0, gt=0, alias="TIDINGS_RATE_LIMIT_BURST_SECONDS")
    # How far ahead of now a request's slot in the shared bucket is set, so that the bucket's write is
    # done before the request leaves: against a provider whose limiter allows no burst, a write slower
    # than this sends a request late and lets the next one arrive too close (0: the slot is now).
    rate_limit_lead_seconds: float = Field(0.0, ge=0, le=5, alias="TIDINGS_RATE_LIMIT_LEAD_SECONDS")
    # Below this share of the provider's own limit left, the shared bucket slows down (0: never).
    rate_limit_slowdown_below_percent: float = Field(
        20.0, ge=0, le=100, alias="TIDINGS_RATE_LIMIT_SLOWDOWN_BELOW_PERCENT"
    )
    receipt_from_address: str | None = Field(None, alias="RECEIPT_FROM_ADDRESS")
    receipt_from_name: str | None = Field(None, alias="RECEIPT_FROM_NAME")
    stripe_api_version: str = Field("2024-06-20", alias="STRIPE_API_VERSION")
    # Where Stripe sends the customer back after 3-D Secure; with it, requires_action carries a URL.
    stripe_return_url: str | None = Field(None, alias="STRIPE_RETURN_URL")

    # --- shared state tables (DynamoDB) ------------------------------------------------------
    circuit_breaker_table: str | None = Field(None, alias="CIRCUIT_BREAKER_TABLE")
    rate_limit_table: str | None = Field(None, alias="RATE_LIMIT_TABLE")
    idempotency_table: str | None = Field(None, alias="IDEMPOTENCY_TABLE")

    # --- timeouts and budget -----------------------------------------------------------------
    http_timeout_seconds: float = Field(10.0, gt=0, alias="TIDINGS_HTTP_TIMEOUT_SECONDS")
    http_connect_timeout_seconds: float = Field(3.0, gt=0, alias="TIDINGS_HTTP_CONNECT_TIMEOUT_SECONDS")
    call_budget_seconds: float = Field(25.0, gt=0, alias="TIDINGS_CALL_BUDGET_SECONDS")
    lambda_time_reserve_seconds: float = Field(2.0, ge=0, alias="TIDINGS_LAMBDA_TIME_RESERVE_SECONDS")

    # --- retry -------------------------------------------------------------------------------
    # Multiplies every retry and rate-limit sleep: 0.001 in tests turns a 2 s Retry-After into 2 ms.
    retry_time_scale: float = Field(1.0, ge=0, alias="TIDINGS_RETRY_TIME_SCALE")
    retry_base_seconds: float = Field(0.5, gt=0, alias="TIDINGS_RETRY_BASE_SECONDS")
    retry_max_backoff_seconds: float = Field(8.0, gt=0, alias="TIDINGS_RETRY_MAX_BACKOFF_SECONDS")
    transient_max_attempts: int = Field(3, ge=1, le=10, alias="TIDINGS_TRANSIENT_MAX_ATTEMPTS")
    rate_limited_max_attempts: int = Field(10, ge=1, le=20, alias="TIDINGS_RATE_LIMITED_MAX_ATTEMPTS")
    max_retry_after_seconds: float = Field(30.0, gt=0, alias="TIDINGS_MAX_RETRY_AFTER_SECONDS")

    # --- circuit breaker (shared through DynamoDB): the fields of BreakerSettings ------------
    breaker_error_threshold_percent: float = Field(
        30.0, gt=0, le=100, alias="TIDINGS_BREAKER_ERROR_THRESHOLD_PERCENT"
    )
    breaker_minimum_calls: int = Field(20, ge=1, alias="TIDINGS_BREAKER_MINIMUM_CALLS")
    breaker_window_seconds: int = Field(60, ge=1, alias="TIDINGS_BREAKER_WINDOW_SECONDS")
    breaker_window_buckets: int = Field(6, ge=1, le=60, alias="TIDINGS_BREAKER_WINDOW_BUCKETS")
    breaker_recovery_seconds: int = Field(30, ge=1, alias="TIDINGS_BREAKER_RECOVERY_SECONDS")
    breaker_success_threshold: int = Field(1, ge=1, alias="TIDINGS_BREAKER_SUCCESS_THRESHOLD")
    breaker_cache_seconds: int = Field(5, ge=0, alias="TIDINGS_BREAKER_CACHE_SECONDS")

    # --- fallback switches: "sendgrid_then_ses" sends through SendGrid and falls back to SES; "ses_only"
    # skips SendGrid (a SendGrid incident), and the same for SMS. Usually changed live (AppConfig).
    email_providers: Literal["sendgrid_then_ses", "ses_only"] = Field(
        "sendgrid_then_ses", alias="TIDINGS_EMAIL_PROVIDERS"
    )
    sms_providers: Literal["twilio_then_sns", "sns_only"] = Field(
        "twilio_then_sns", alias="TIDINGS_SMS_PROVIDERS"
    )

    # --- live configuration (AppConfig; tidings.live_config). Unset: the environment's values only.
    appconfig_application: str | None = Field(None, alias="TIDINGS_APPCONFIG_APPLICATION")
    appconfig_environment: str | None = Field(None, alias="TIDINGS_APPCONFIG_ENVIRONMENT")
    appconfig_profile: str | None = Field(None, alias="TIDINGS_APPCONFIG_PROFILE")
    # How long a container keeps the configuration before asking again: a change takes effect within it.
    live_config_ttl_seconds: int = Field(60, ge=0, le=3600, alias="TIDINGS_LIVE_CONFIG_TTL_SECONDS")

    # --- credentials and duplicate-send records ----------------------------------------------
    secret_ttl_seconds: int = Field(300, ge=0, alias="TIDINGS_SECRET_TTL_SECONDS")
    send_dedup_ttl_seconds: int = Field(7 * 24 * 3600, ge=60, alias="TIDINGS_SEND_DEDUP_TTL_SECONDS")

    @field_validator("stripe_api_base_url", "sendgrid_api_base_url", "twilio_api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http(s) URL such as https://api.stripe.com")
        return value.rstrip("/")

    @field_validator("receipt_from_address")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("must be an e-mail address such as receipts@example.com")
        return value

    def provider(self, name: ProviderName) -> ProviderSettings:
        """The settings one provider client needs; fails naming the variable when its secret is unset."""
        secret_arn = getattr(self, f"{name}_secret_arn")
        if not secret_arn:
            raise ConfigurationError(f"{name.upper()}_SECRET_ARN is not set: the {name} client needs it")
        rate, burst = self.rate_limit(name)
        return ProviderSettings(
            name=name,
            base_url=getattr(self, f"{name}_api_base_url"),
            secret_arn=secret_arn,
            rate_per_second=rate,
            burst=burst,
        )

    def rate_limit(self, service: RateLimitedService) -> tuple[float, float]:
        """(requests per second, bucket capacity) for one service's account-wide token bucket."""
        rate = getattr(self, f"{service}_rate_per_second")
        return rate, max(1.0, rate * self.rate_limit_burst_seconds)

    def rate_limits(self, service: RateLimitedService) -> RateLimitSettings:
        """One service's bucket settings as the environment gives them (the template's defaults)."""
        rate, burst = self.rate_limit(service)
        return RateLimitSettings(
            service=service,
            rate_per_second=rate,
            burst=burst,
            slowdown_below_percent=self.rate_limit_slowdown_below_percent,
        )

    def breaker(self) -> BreakerSettings:
        """The breaker's thresholds as the environment gives them (the template's defaults)."""
        return BreakerSettings(
            error_threshold_percent=self.breaker_error_threshold_percent,
            minimum_calls=self.breaker_minimum_calls,
            window_seconds=self.breaker_window_seconds,
            window_buckets=self.breaker_window_buckets,
            recovery_seconds=self.breaker_recovery_seconds,
            probe_successes=self.breaker_success_threshold,
            cache_seconds=self.breaker_cache_seconds,
        )

    def switched_off(self, provider: str) -> bool:
        """Whether the fallback switches send this provider's channel through its fallback only."""
        return (provider == "sendgrid" and self.email_providers == "ses_only") or (
            provider == "twilio" and self.sms_providers == "sns_only"
        )

    def require(self, field: str) -> str:
        """The value of an optional setting a component cannot work without, or a clear error."""
        value: str = getattr(self, field)
        if not value:
            alias = type(self).model_fields[field].alias
            raise ConfigurationError(f"{alias} is not set")
        return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Validate the environment into :class:`Settings`; the error names each bad variable."""
    return load(Settings, environ)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this container, validated once (cold start)."""
    return load_settings()


@lru_cache(maxsize=1)
def observability_settings() -> ObservabilitySettings:
    return load(ObservabilitySettings)
