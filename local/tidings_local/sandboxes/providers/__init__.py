"""The provider behaviours a sandbox can take on."""

from __future__ import annotations

import importlib
import secrets
import string
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tidings_local.sandboxes.core import Provider

PROVIDERS = ("stripe", "sendgrid", "twilio")

_ALNUM = string.ascii_letters + string.digits


def provider_class(name: str) -> type[Provider]:
    if name not in PROVIDERS:
        raise ValueError(f"unknown sandbox {name!r}: expected one of {', '.join(PROVIDERS)}")
    module = importlib.import_module(f"tidings_local.sandboxes.providers.{name}")
    return module.PROVIDER


def random_alnum(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def random_hex(length: int) -> str:
    return secrets.token_hex(length // 2 + 1)[:length]
