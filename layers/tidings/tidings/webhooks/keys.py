"""Which signing keys a verifier accepts right now: the current one always, the previous one only
while a roll is in progress.

A provider secret in Secrets Manager is a JSON object. For a field such as ``webhook_secret`` a roll is
described by two more fields::

    {"webhook_secret": "whsec_new", "previous_webhook_secret": "whsec_old",
     "previous_valid_until": 1767225600}

``previous_valid_until`` (epoch seconds) is required for the previous key to count: a roll without an
end would leave a retired key valid for ever.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The field holding each provider's webhook key in its Secrets Manager secret.
WEBHOOK_KEY_FIELDS: dict[str, str] = {
    "stripe": "webhook_secret",
    "sendgrid": "webhook_public_key",
    "twilio": "auth_token",
}


class SigningKeyMissing(KeyError):
    """The provider secret has no current webhook key: a configuration fault, not the caller's."""


def accepted_keys(secret: Mapping[str, Any], field: str, *, now: float) -> list[str]:
    """The keys to try, current first; the previous key only while ``now < previous_valid_until``."""
    current = secret.get(field)
    if not current:
        raise SigningKeyMissing(field)
    keys = [str(current)]
    previous = secret.get(f"previous_{field}")
    valid_until = secret.get("previous_valid_until")
    if previous and valid_until is not None and now < float(valid_until) and previous != current:
        keys.append(str(previous))
    return keys
