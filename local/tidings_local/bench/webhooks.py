"""Webhook verification cost: the layer's verifiers on deliveries signed as the providers sign them.

Each payload is signed once by the sandboxes' own signers (tidings_local.sandboxes.webhooks, with the
documented local credentials), then verified ``verifications`` times by tidings.webhooks, as the
receiver does per delivery: Stripe HMAC-SHA256 over ``t.body``, Twilio HMAC-SHA1 over URL + sorted
form parameters, SendGrid ECDSA P-256 over ``timestamp + body`` (its public key parsed once per
container, as the receiver's cache does). A verification that fails stops the benchmark.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

PROVIDERS = ("stripe", "twilio", "sendgrid")
SCHEMES = {"stripe": "HMAC-SHA256", "twilio": "HMAC-SHA1", "sendgrid": "ECDSA P-256"}
_NOW = 1_767_225_600  # a fixed clock: the signed timestamps are always inside the tolerance


@dataclass
class VerificationCost:
    provider: str
    scheme: str
    verifications: int
    repeats: int
    ms_per_1000: float  # median over the repeats

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "scheme": self.scheme,
            "verifications": self.verifications,
            "repeats": self.repeats,
            "ms_per_1000": round(self.ms_per_1000, 3),
        }


def _verifiers() -> dict[str, Callable[[], object]]:
    """One ready-to-run verification per provider, over a realistic signed delivery."""
    from tidings.webhooks.sendgrid import verify_sendgrid_signature
    from tidings.webhooks.stripe import verify_stripe_signature
    from tidings.webhooks.twilio import verify_twilio_signature
    from tidings_local.sandboxes import credentials
    from tidings_local.sandboxes.webhooks import sendgrid_signature, stripe_signature_header, twilio_signature

    stripe_body = json.dumps(
        {
            "id": "evt_bench",
            "object": "event",
            "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi_bench", "object": "payment_intent", "status": "succeeded"}},
        }
    ).encode()
    stripe_header = stripe_signature_header(credentials.STRIPE_WEBHOOK_SECRET, stripe_body, _NOW)

    twilio_url = "https://hooks.example.com/webhooks/twilio?tidings_send_key=bench"
    twilio_params = {
        "MessageSid": "SM" + "0" * 32,
        "AccountSid": credentials.TWILIO_ACCOUNT_SID,
        "MessageStatus": "delivered",
        "To": "+15005550006",
        "From": credentials.TWILIO_FROM_NUMBER,
        "ApiVersion": "2010-04-01",
    }
    twilio_body = urlencode(twilio_params).encode()
    twilio_header = twilio_signature(credentials.TWILIO_AUTH_TOKEN, twilio_url, twilio_params)

    sendgrid_body = json.dumps(
        [{"event": "delivered", "sg_event_id": "bench", "timestamp": _NOW, "tidings_send_key": "bench"}]
    ).encode()
    sendgrid_header = sendgrid_signature(credentials.SENDGRID_WEBHOOK_PRIVATE_KEY_PEM, sendgrid_body, _NOW)

    return {
        "stripe": lambda: verify_stripe_signature(
            stripe_body, stripe_header, [credentials.STRIPE_WEBHOOK_SECRET], now=_NOW
        ),
        "twilio": lambda: verify_twilio_signature(
            twilio_url,
            twilio_body,
            twilio_header,
            [credentials.TWILIO_AUTH_TOKEN],
            content_type="application/x-www-form-urlencoded",
        ),
        "sendgrid": lambda: verify_sendgrid_signature(
            sendgrid_body, sendgrid_header, str(_NOW), [credentials.SENDGRID_WEBHOOK_PUBLIC_KEY], now=_NOW
        ),
    }


def measure(verifications: int = 1000, repeats: int = 5) -> list[VerificationCost]:
    """Milliseconds per 1,000 verifications (median of ``repeats`` batches), providers interleaved."""
    verifiers = _verifiers()
    for verify in verifiers.values():
        verify()  # a wrong signature raises here; also warms the key cache
    batches: dict[str, list[float]] = {name: [] for name in PROVIDERS}
    for _ in range(repeats):
        for name in PROVIDERS:
            verify = verifiers[name]
            started = time.perf_counter()
            for _ in range(verifications):
                verify()
            batches[name].append(time.perf_counter() - started)
    return [
        VerificationCost(
            provider=name,
            scheme=SCHEMES[name],
            verifications=verifications,
            repeats=repeats,
            ms_per_1000=statistics.median(batches[name]) * 1000 * 1000 / verifications,
        )
        for name in PROVIDERS
    ]
