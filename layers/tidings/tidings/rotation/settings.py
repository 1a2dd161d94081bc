"""Settings of the rotation function, read from the environment once per container.

Provider base URLs, secret ARNs and HTTP timeouts come from :mod:`tidings.config` (the same variables
every function reads); these are the rotation's own.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from tidings.config import TidingsSettings, load


class RotationSettings(TidingsSettings):
    #: How long a rolled webhook key's predecessor stays valid (``previous_valid_until = now + this``).
    webhook_grace_seconds: int = Field(3600, ge=0, alias="ROTATION_WEBHOOK_GRACE_SECONDS")
    #: Stripe's webhook signing secret (``StripeSigningSecret``), apart from its API key's secret.
    stripe_signing_secret_arn: str | None = Field(None, alias="STRIPE_SIGNING_SECRET_ARN")
    #: Roll Stripe's webhook_secret on each rotation. Off by default: live Stripe issues signing secrets
    #: itself (docs/rotation.md), so only a signer that reads the secret (the local one) can follow.
    roll_stripe_webhook_secret: bool = Field(False, alias="ROTATION_ROLL_STRIPE_WEBHOOK_SECRET")
    #: Scopes of each new SendGrid key: mail.send to send, api_keys.* so the next rotation can run.
    #: A comma-separated list in the environment (NoDecode: not JSON).
    sendgrid_key_scopes: Annotated[tuple[str, ...], NoDecode] = Field(
        ("mail.send", "api_keys.create", "api_keys.delete", "scopes.read"), alias="SENDGRID_API_KEY_SCOPES"
    )
    #: Start of the name given to each new provider key (the date and the rotation token follow).
    key_name_prefix: str = Field("tidings", min_length=1, max_length=30, alias="ROTATION_KEY_NAME_PREFIX")
    #: The shop's callbacks' signing secret (docs/callbacks.md), rotated with the same grace window.
    callback_secret_arn: str | None = Field(None, alias="CALLBACK_SECRET_ARN")

    @field_validator("sendgrid_key_scopes", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


@lru_cache(maxsize=1)
def get_rotation_settings() -> RotationSettings:
    return load(RotationSettings)
