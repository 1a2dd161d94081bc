"""Configuration that changes without a redeploy: provider rates, breaker thresholds, retry budgets and
the fallback switches, read from AWS AppConfig on top of the environment's :class:`~tidings.config.Settings`.

The document is freeform JSON whose keys are :class:`~tidings.config.Settings` field names from
:data:`LIVE_FIELDS` (``{"twilio_rate_per_second": 2, "email_providers": "ses_only"}``); a key it leaves
out keeps the environment's value (the template's parameters), so the defaults stay where they were.
Powertools' ``AppConfigProvider`` fetches it and keeps it for ``TIDINGS_LIVE_CONFIG_TTL_SECONDS``; a
container sees a change within that time, without a restart.

Every new document is validated before use by :class:`~tidings.config.Settings` itself (the same field
constraints as the environment), after :func:`parse` refused unknown keys. A document that is not JSON,
names an unknown setting or holds a bad value is rejected: the last good settings stay in force, the
rejection is logged (field names and reasons, never values) and counted as ``LiveConfigurationRejected``,
which a CloudWatch alarm watches. AppConfig's own JSON Schema validator (:func:`json_schema`, in
template.yaml) refuses such a document before it is deployed; this is the second line.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from tidings.config import Settings
from tidings.observability import emit_metric, logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import AppConfigProvider

#: The settings the live configuration may change; everything else comes from the environment only.
LIVE_FIELDS: tuple[str, ...] = (
    # provider rates (the shared token buckets)
    "stripe_rate_per_second",
    "sendgrid_rate_per_second",
    "twilio_rate_per_second",
    "ses_rate_per_second",
    "sns_rate_per_second",
    "rate_limit_burst_seconds",
    "rate_limit_slowdown_below_percent",
    # circuit breaker thresholds (the fields of config.BreakerSettings)
    "breaker_error_threshold_percent",
    "breaker_minimum_calls",
    "breaker_window_seconds",
    "breaker_recovery_seconds",
    "breaker_success_threshold",
    # retry budgets
    "transient_max_attempts",
    "rate_limited_max_attempts",
    "max_retry_after_seconds",
    "call_budget_seconds",
    # fallback switches
    "email_providers",
    "sms_providers",
)

#: AppConfig's data plane refuses polls closer together than the session's interval (15 s at least).
MINIMUM_POLL_INTERVAL_SECONDS = 15


class InvalidLiveConfiguration(ValueError):
    """A configuration document that must not be used; ``problems`` name each key and what is wrong."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class ConfigurationUnavailable(Exception):
    """The configuration could not be fetched (AppConfig down, no permission, no deployment yet)."""


def parse(raw: bytes | str) -> dict[str, Any]:
    """The document as a mapping of live setting names to values; refuses anything else."""
    try:
        document = json.loads(raw or b"{}")
    except ValueError:
        raise InvalidLiveConfiguration(["the document is not JSON"]) from None
    if not isinstance(document, dict):
        raise InvalidLiveConfiguration(["the document must be a JSON object"])
    unknown = sorted(key for key in document if key not in LIVE_FIELDS)
    if unknown:
        raise InvalidLiveConfiguration([f"{key}: not a setting that can change live" for key in unknown])
    return document


def apply(base: Settings, document: dict[str, Any]) -> Settings:
    """``base`` with the document's values, validated by the same model (and constraints) as ``base``."""
    try:
        return Settings.model_validate(base.model_dump() | document)
    except ValidationError as exc:
        raise InvalidLiveConfiguration(
            [f"{error['loc'][0] if error['loc'] else 'document'}: {error['msg']}" for error in exc.errors()]
        ) from None


def validate(raw: bytes | str, base: Settings | None = None) -> Settings:
    """The settings ``raw`` would give on ``base`` (the model's defaults when None), or the error."""
    return apply(base if base is not None else Settings.model_validate({}), parse(raw))


def changes(before: Settings, after: Settings) -> dict[str, Any]:
    """The live settings whose values differ (what an operator changed)."""
    return {
        name: getattr(after, name) for name in LIVE_FIELDS if getattr(before, name) != getattr(after, name)
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a document (the template's AppConfig validator), from the Settings fields."""
    properties = Settings.model_json_schema(by_alias=False)["properties"]
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {name: _draft4(properties[name]) for name in LIVE_FIELDS},
    }


def _draft4(prop: dict[str, Any]) -> dict[str, Any]:
    """One property as AppConfig's JSON Schema (draft 4) validator reads it."""
    schema: dict[str, Any] = {key: prop[key] for key in ("type", "enum", "minimum", "maximum") if key in prop}
    if "exclusiveMinimum" in prop:  # draft 4: a boolean beside minimum, not a number
        schema |= {"minimum": prop["exclusiveMinimum"], "exclusiveMinimum": True}
    return schema


class ConfigurationSource(Protocol):
    def fetch(self) -> bytes:
        """The current document (raw); raises :class:`ConfigurationUnavailable`."""
        ...


class AppConfigSource:
    """One AppConfig configuration profile through Powertools, kept for ``ttl_seconds`` between polls."""

    def __init__(
        self,
        application: str,
        environment: str,
        profile: str,
        ttl_seconds: int,
        client: Any | None = None,
    ) -> None:
        self.application = application
        self.environment = environment
        self.profile = profile
        self.ttl_seconds = ttl_seconds
        self._client = client
        self._provider: AppConfigProvider | None = None

    def fetch(self) -> bytes:
        from aws_lambda_powertools.utilities.parameters import AppConfigProvider
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        if self._provider is None:  # builds the appconfigdata client: first use, never at import
            self._provider = AppConfigProvider(
                environment=self.environment, application=self.application, boto3_client=self._client
            )
        try:
            value = self._provider.get(
                self.profile,
                max_age=self.ttl_seconds,
                RequiredMinimumPollIntervalInSeconds=max(MINIMUM_POLL_INTERVAL_SECONDS, self.ttl_seconds),
            )
        except GetParameterError as exc:
            raise ConfigurationUnavailable(type(exc.__cause__ or exc).__name__) from exc
        return value if isinstance(value, bytes) else str(value).encode()


class LiveSettings:
    """The container's settings: the environment's, with the last good live configuration applied."""

    def __init__(self, base: Settings, source: ConfigurationSource | None) -> None:
        self.base = base
        self.source = source
        self._good = base
        self._last_raw: bytes | None = None
        self._unavailable = False
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, client: Any | None = None) -> LiveSettings:
        """Live when the three AppConfig names are set; otherwise the environment's settings only."""
        names = (settings.appconfig_application, settings.appconfig_environment, settings.appconfig_profile)
        if not all(names):
            return cls(settings, None)
        application, environment, profile = (str(name) for name in names)
        source = AppConfigSource(
            application, environment, profile, settings.live_config_ttl_seconds, client=client
        )
        return cls(settings, source)

    def current(self) -> Settings:
        """The settings to use now (the same object until the configuration changes)."""
        if self.source is None:
            return self.base
        with self._lock:
            try:
                raw = self.source.fetch()
            except ConfigurationUnavailable as exc:
                if not self._unavailable:  # once per outage, not once per call
                    self._unavailable = True
                    logger.warning(
                        "live configuration unavailable, keeping the last good one", error_type=str(exc)
                    )
                    emit_metric("LiveConfigurationUnavailable")
                return self._good
            self._unavailable = False
            if raw == self._last_raw:
                return self._good
            self._last_raw = raw
            try:
                settings = apply(self.base, parse(raw))
            except InvalidLiveConfiguration as exc:
                logger.error("live configuration rejected, keeping the last good one", problems=exc.problems)
                emit_metric("LiveConfigurationRejected")
                return self._good
            changed = changes(self._good, settings)
            if changed:  # else the same object stays, and so do the channels built for it
                self._good = settings
                logger.info("live configuration applied", changed=sorted(changed))
                emit_metric("LiveConfigurationApplied")
            return self._good
