"""Provider secrets from AWS Secrets Manager: one JSON secret per provider, cached per container.

The one path every reader takes: the provider clients (:meth:`CredentialStore.get`, a validated
credentials model) and the webhook receiver (:meth:`CredentialStore.secret`, the raw JSON with its
signing keys and any key roll in progress). Values are cached for the store's TTL
(TIDINGS_SECRET_TTL_SECONDS for the providers, WEBHOOK_SECRET_CACHE_SECONDS for the receiver;
Powertools parameters) and fetched again at once, ONCE, when the provider refuses them
(:meth:`CredentialStore.refresh`, called by the HTTP client on AuthenticationFailed) so a rotated key is
picked up without a cold start. Every loaded value is registered with the log redaction, so it can
never be printed.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from tidings.errors import AuthenticationFailed
from tidings.observability import logger, register_secret


class StripeCredentials(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    api_key: str
    webhook_secret: str | None = None


class SendGridCredentials(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    api_key: str
    webhook_public_key: str | None = None


class TwilioCredentials(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    account_sid: str
    api_key_sid: str
    api_key_secret: str
    from_number: str
    auth_token: str | None = None


CREDENTIAL_MODELS: dict[str, type[BaseModel]] = {
    "stripe": StripeCredentials,
    "sendgrid": SendGridCredentials,
    "twilio": TwilioCredentials,
}


class CredentialStore:
    """Reads and caches provider secrets; ``client`` is a boto3 Secrets Manager client (or None)."""

    def __init__(self, ttl_seconds: int = 300, client: Any | None = None) -> None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        self.ttl_seconds = ttl_seconds
        self._provider = SecretsProvider(boto3_client=client)

    def secret(self, provider: str, secret_id: str, *, refresh: bool = False) -> dict[str, Any]:
        """The provider's secret as stored (a JSON object); ``refresh`` bypasses the cache. Every
        string in it, a previous key during a roll included, is registered with the redaction."""
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            raw = self._provider.get(
                secret_id, max_age=self.ttl_seconds, transform="json", force_fetch=refresh
            )
        except GetParameterError as exc:
            # The message can carry the secret's ARN but never its value.
            logger.error("provider credentials unavailable", provider=provider, error=type(exc).__name__)
            raise AuthenticationFailed(
                "credentials could not be read from Secrets Manager",
                provider=provider,
                code="secret_unavailable",
            ) from None
        if not isinstance(raw, dict):
            raise AuthenticationFailed(
                "secret is not a JSON object", provider=provider, code="secret_malformed"
            )
        for value in raw.values():
            if isinstance(value, str):
                register_secret(value)
        return raw

    def get(self, provider: str, secret_id: str, *, refresh: bool = False) -> Any:
        """The provider's credentials model; ``refresh`` bypasses the cache."""
        raw = self.secret(provider, secret_id, refresh=refresh)
        try:
            return CREDENTIAL_MODELS[provider].model_validate(raw)
        except ValidationError as exc:
            missing = sorted({".".join(map(str, e["loc"])) for e in exc.errors()})
            raise AuthenticationFailed(
                f"secret is missing or has invalid keys: {', '.join(missing)}",
                provider=provider,
                code="secret_malformed",
            ) from None

    def clear(self) -> None:
        """Forget every cached secret (the next read asks Secrets Manager)."""
        self._provider.clear_cache()

    def refresh(self, provider: str, secret_id: str) -> Any:
        logger.info("refreshing provider credentials after an authentication failure", provider=provider)
        return self.get(provider, secret_id, refresh=True)


@lru_cache(maxsize=1)
def get_credential_store() -> CredentialStore:
    """The container's credential store (built on first use, never at import)."""
    import boto3

    from tidings.config import get_settings

    return CredentialStore(
        ttl_seconds=get_settings().secret_ttl_seconds, client=boto3.client("secretsmanager")
    )
