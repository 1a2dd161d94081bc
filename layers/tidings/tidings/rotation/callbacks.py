"""Rotating the signing secret of the shop's callbacks (``{"signing_secret": "whsec_..."}``).

createSecret makes a new Standard Webhooks key and keeps the old one as ``previous_signing_secret``
until ``previous_valid_until`` (now + ``ROTATION_WEBHOOK_GRACE_SECONDS``); SendCallback signs with both
until then, so a shop that has not yet taken the new key still verifies every callback. A secret
without a valid key (the template's generated placeholder, before the first rotation) gets one with no
previous key. Nothing lives at a provider: setSecret and retire have nothing to do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tidings.errors import AuthenticationFailed
from tidings.observability import logger, register_secret
from tidings.outbound import signing
from tidings.rotation.protocol import SecretValue
from tidings.rotation.providers import PREVIOUS_VALID_UNTIL, drop_expired_roll, roll_webhook_key

FIELD = "signing_secret"


def _valid(value: Any) -> bool:
    try:
        signing.secret_key(str(value or ""))
    except signing.SigningSecretInvalid:
        return False
    return True


class CallbackSecretRotation:
    provider = "callback"

    def __init__(self, *, grace_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.grace_seconds = grace_seconds
        self.clock = clock

    def create(self, current: SecretValue, token: str) -> SecretValue:
        now = self.clock()
        new_secret = signing.generate_secret()
        register_secret(new_secret)
        if not _valid(current.get(FIELD)):
            logger.info("callback signing secret created")
            return {FIELD: new_secret}
        pending = roll_webhook_key(
            drop_expired_roll(current, now=now), FIELD, new_secret, now=now, grace_seconds=self.grace_seconds
        )
        logger.info("callback signing secret rolled", previous_valid_until=pending.get(PREVIOUS_VALID_UNTIL))
        return pending

    def set(self, pending: SecretValue, current: SecretValue) -> None:
        """Nothing to push: the key lives only in this secret."""

    def test(self, pending: SecretValue) -> None:
        if not _valid(pending.get(FIELD)):
            raise AuthenticationFailed(
                "the pending secret has no valid signing_secret",
                provider=self.provider,
                code="secret_malformed",
            )

    def retire(self, previous: SecretValue, current: SecretValue) -> None:
        """Nothing to revoke: the previous key expires by ``previous_valid_until``."""
