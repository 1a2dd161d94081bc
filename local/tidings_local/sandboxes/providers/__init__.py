"""The provider behaviours a sandbox can take on."""

from __future__ import annotations

import importlib

from tidings_local.sandboxes.base import Provider

PROVIDERS = ("stripe", "sendgrid", "twilio")


def provider_class(name: str) -> type[Provider]:
    if name not in PROVIDERS:
        raise ValueError(f"unknown sandbox {name!r}: expected one of {', '.join(PROVIDERS)}")
    module = importlib.import_module(f"tidings_local.sandboxes.providers.{name}")
    provider: type[Provider] = module.PROVIDER
    return provider
