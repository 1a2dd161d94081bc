"""Rotating Stripe's webhook signing secret (``StripeSigningSecret``: ``{"webhook_secret": "whsec_..."}``).

The signing keys live apart from the API credentials (one secret each), so the webhook receiver reads
only them. With ``ROTATION_ROLL_STRIPE_WEBHOOK_SECRET`` createSecret makes a new ``whsec_`` key and
keeps the old one as ``previous_webhook_secret`` until ``previous_valid_until`` (now +
``ROTATION_WEBHOOK_GRACE_SECONDS``); without it the key is carried over and only an ended roll is
dropped (live Stripe issues its signing secrets itself, docs/rotation.md). Nothing lives at a provider:
setSecret and retire have nothing to do.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from tidings.errors import AuthenticationFailed
from tidings.observability import logger, register_secret
from tidings.rotation.protocol import SecretValue
from tidings.rotation.providers import PREVIOUS_VALID_UNTIL, drop_expired_roll, roll_webhook_key
from tidings.webhooks.keys import WEBHOOK_KEY_FIELDS

FIELD = WEBHOOK_KEY_FIELDS["stripe"]


class StripeSigningSecretRotation:
    provider = "stripe"

    def __init__(self, *, roll: bool, grace_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.roll = roll
        self.grace_seconds = grace_seconds
        self.clock = clock

    def create(self, current: SecretValue, token: str) -> SecretValue:
        now = self.clock()
        pending = drop_expired_roll(current, now=now)
        if self.roll and current.get(FIELD):
            new_secret = "whsec_" + secrets.token_urlsafe(32)
            register_secret(new_secret)
            pending = roll_webhook_key(current, FIELD, new_secret, now=now, grace_seconds=self.grace_seconds)
            logger.info("stripe webhook secret rolled", previous_valid_until=pending[PREVIOUS_VALID_UNTIL])
        return pending

    def set(self, pending: SecretValue, current: SecretValue) -> None:
        """Nothing to push: Stripe has no API to set a signing secret."""

    def test(self, pending: SecretValue) -> None:
        if not str(pending.get(FIELD) or "").startswith("whsec_"):
            raise AuthenticationFailed(
                "the pending secret has no webhook_secret", provider=self.provider, code="secret_malformed"
            )

    def retire(self, previous: SecretValue, current: SecretValue) -> None:
        """Nothing to revoke: the previous signing secret expires by ``previous_valid_until``."""
