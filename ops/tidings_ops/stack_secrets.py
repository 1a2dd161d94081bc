"""Where a stack keeps each provider's credentials and webhook signing keys, and reading and writing them.

The layout is the template's: per provider one JSON secret of API credentials (``StripeSecret``,
``SendGridSecret``, ``TwilioSecret``) and one of the key its webhooks are verified with
(``StripeSigningSecret``, ... with the field of ``tidings.webhooks.keys.WEBHOOK_KEY_FIELDS``), the only
ones the webhook receiver may read. Twilio signs with the account's auth token, so its signing secret
holds a copy of the credentials' ``auth_token``. ``LAYOUTS`` is the one place that says so: the set-up
commands read and write through it only. A write merges into the secret's current JSON (a signing key
roll's ``previous_*`` fields stay).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tidings_ops.errors_text import aws_call
from tidings_ops.stack import StackResources
from tidings_ops.target import OperatorError, Target


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    #: A credential: read from a prompt or stdin, never echoed, never an option. Otherwise an option.
    secret: bool = True


@dataclass(frozen=True)
class Layout:
    provider: str
    #: The logical id of the secret holding the API credentials, and their fields.
    credentials: str
    fields: tuple[Field, ...]
    #: The logical id of the secret holding the webhook signing key, and its field.
    signing: str
    signing_field: str


LAYOUTS: dict[str, Layout] = {
    "stripe": Layout(
        "stripe",
        "StripeSecret",
        (Field("api_key", "Stripe secret key (sk_test_...)"),),
        "StripeSigningSecret",
        "webhook_secret",
    ),
    "sendgrid": Layout(
        "sendgrid",
        "SendGridSecret",
        (Field("api_key", "SendGrid API key (SG....)"),),
        "SendGridSigningSecret",
        "webhook_public_key",
    ),
    "twilio": Layout(
        "twilio",
        "TwilioSecret",
        (
            Field("account_sid", "Twilio account SID (AC...)", secret=False),
            Field("api_key_sid", "Twilio API key SID (SK...)", secret=False),
            Field("api_key_secret", "Twilio API key secret"),
            Field("auth_token", "Twilio auth token"),
            Field("from_number", "Twilio sender number (E.164)", secret=False),
        ),
        "TwilioSigningSecret",
        "auth_token",
    ),
}


class StackSecrets:
    """The stack's provider secrets through Secrets Manager (``GetSecretValue``, ``PutSecretValue``)."""

    def __init__(self, target: Target, resources: StackResources | None = None) -> None:
        self.target = target
        self.resources = resources or StackResources(target)

    def arn(self, logical_id: str) -> str:
        return self.resources.physical_id(logical_id)

    def read(self, logical_id: str) -> dict[str, Any] | None:
        """The secret's JSON object; None when it has no value yet (a fresh deploy) or is not JSON."""
        client = self.target.client("secretsmanager")
        arn = self.arn(logical_id)
        try:
            with aws_call(self.target, "Secrets Manager GetSecretValue"):
                value = client.get_secret_value(SecretId=arn)
        except OperatorError as exc:
            if "ResourceNotFoundException" in str(exc):  # no AWSCURRENT version: nothing set yet
                return None
            raise
        try:
            parsed = json.loads(value.get("SecretString") or "")
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None

    def merge(self, logical_id: str, values: dict[str, str]) -> list[str]:
        """Write ``values`` over the secret's current JSON; the field names that changed."""
        current = self.read(logical_id) or {}
        changed = sorted(k for k, v in values.items() if current.get(k) != v)
        if not changed:
            return []
        merged = {**current, **values}
        with aws_call(self.target, "Secrets Manager PutSecretValue"):
            self.target.client("secretsmanager").put_secret_value(
                SecretId=self.arn(logical_id), SecretString=json.dumps(merged)
            )
        return changed

    def credentials(self, provider: str) -> dict[str, Any]:
        """The provider's API credentials (an empty dict when none are set)."""
        return dict(self.read(LAYOUTS[provider].credentials) or {})

    def signing_key(self, provider: str) -> str | None:
        """The webhook signing key the stack verifies with now (None when none is set)."""
        layout = LAYOUTS[provider]
        value = (self.read(layout.signing) or {}).get(layout.signing_field)
        return str(value) if value else None
