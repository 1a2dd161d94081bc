"""Typed failures of inbound webhooks.

``WebhookSignatureInvalid`` extends the project's ``ProviderError`` so every failure in Tidings shares one
hierarchy (``to_dict`` is log- and DLQ-safe). Its ``reason`` is a short machine-readable code for logs
and metrics only: the HTTP answer to the caller never carries it, so an attacker learns nothing about
which check failed.
"""

from __future__ import annotations

from typing import Any, Literal

from tidings.errors import ProviderError

RejectionReason = Literal[
    "missing_header",
    "malformed_header",
    "malformed_body",
    "empty_body",
    "timestamp_outside_tolerance",
    "no_matching_signature",
    "body_hash_mismatch",
    "body_hash_missing",
    "malformed_url",
]


class WebhookSignatureInvalid(ProviderError):
    """An inbound webhook failed verification; nothing of it may be processed."""

    category = "webhook_rejected"

    def __init__(self, reason: RejectionReason, *, provider: str, **kwargs: Any) -> None:
        super().__init__("invalid signature", provider=provider, code=reason, **kwargs)
        self.reason: RejectionReason = reason
