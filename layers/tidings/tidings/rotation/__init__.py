"""Rotation of the provider secrets in Secrets Manager (the rotation function's domain code).

    rotator = build_rotator(settings, rotation_settings, secrets_client=..., http=...)
    rotator.run(secret_id, client_request_token, "createSecret")   # setSecret, testSecret, finishSecret

See docs/rotation.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tidings.audit import AuditLog
    from tidings.config import Settings
    from tidings.rotation.protocol import SecretRotator
    from tidings.rotation.settings import RotationSettings

__all__ = ["build_rotator", "get_rotator"]


def build_rotator(
    settings: Settings,
    rotation_settings: RotationSettings,
    *,
    secrets_client: Any,
    http: Any,
    clock: Callable[[], float] = time.time,
    audit: AuditLog | None = None,
) -> SecretRotator:
    """A rotator for every provider secret configured in ``settings`` (``<PROVIDER>_SECRET_ARN``), for
    Stripe's webhook signing secret (``STRIPE_SIGNING_SECRET_ARN``) and for the callbacks' signing secret
    (``CALLBACK_SECRET_ARN``)."""
    import httpx

    from tidings.providers.sendgrid import sendgrid_error
    from tidings.providers.twilio import twilio_error
    from tidings.rotation.protocol import ProviderRotation, SecretRotator
    from tidings.rotation.providers import (
        ProviderApi,
        SendGridKeyRotation,
        StripeRotation,
        TwilioKeyRotation,
    )

    timeout = httpx.Timeout(settings.http_timeout_seconds, connect=settings.http_connect_timeout_seconds)
    rotations: dict[str, ProviderRotation] = {}
    if settings.twilio_secret_arn:
        api = ProviderApi("twilio", settings.twilio_api_base_url, http, twilio_error, timeout=timeout)
        rotations[settings.twilio_secret_arn] = TwilioKeyRotation(
            api, key_name_prefix=rotation_settings.key_name_prefix, clock=clock
        )
    if settings.sendgrid_secret_arn:
        api = ProviderApi("sendgrid", settings.sendgrid_api_base_url, http, sendgrid_error, timeout=timeout)
        rotations[settings.sendgrid_secret_arn] = SendGridKeyRotation(
            api,
            scopes=rotation_settings.sendgrid_key_scopes,
            key_name_prefix=rotation_settings.key_name_prefix,
            clock=clock,
        )
    if settings.stripe_secret_arn:
        # The API key's secret holds no signing key: the roll is the signing secret's (below).
        rotations[settings.stripe_secret_arn] = StripeRotation(clock=clock)
    if rotation_settings.stripe_signing_secret_arn:
        from tidings.rotation.signing import StripeSigningSecretRotation

        rotations[rotation_settings.stripe_signing_secret_arn] = StripeSigningSecretRotation(
            roll=rotation_settings.roll_stripe_webhook_secret,
            grace_seconds=rotation_settings.webhook_grace_seconds,
            clock=clock,
        )
    if rotation_settings.callback_secret_arn:
        from tidings.rotation.callbacks import CallbackSecretRotation

        rotations[rotation_settings.callback_secret_arn] = CallbackSecretRotation(
            grace_seconds=rotation_settings.webhook_grace_seconds, clock=clock
        )
    return SecretRotator(secrets_client, rotations, clock=clock, audit=audit)


@lru_cache(maxsize=1)
def get_rotator() -> SecretRotator:
    """The container's rotator (clients built on first use, never at import)."""
    import boto3
    import httpx

    from tidings.audit import get_audit_log
    from tidings.config import get_settings
    from tidings.rotation.settings import get_rotation_settings

    return build_rotator(
        get_settings(),
        get_rotation_settings(),
        secrets_client=boto3.client("secretsmanager"),
        http=httpx.Client(follow_redirects=False),
        audit=get_audit_log(),  # its table is first touched when a step is recorded
    )
