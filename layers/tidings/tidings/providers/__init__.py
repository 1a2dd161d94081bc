"""Provider channels for the saga: payment (Stripe), e-mail (SendGrid, SES), SMS (Twilio, SNS).

The factories build a channel on first use and keep it for the container's life (a new one only when the
live configuration changes a setting, tidings.live_config); a handler that only sends SMS never imports
the Stripe or SendGrid code.

    gateway = get_payment_gateway()            # .charge / .retrieve / .cancel / .refund
    email = get_email_channel("sendgrid")      # or "ses"; .name, .send(EmailMessage) -> DeliveryReceipt
    sms = get_sms_channel("twilio")            # or "sns";  .name, .send(SmsMessage) -> DeliveryReceipt
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tidings.providers.channels import EmailChannel, PaymentGateway, SmsChannel
    from tidings.providers.factory import ProviderFactory

__all__ = [
    "current_factory",
    "get_email_channel",
    "get_payment_gateway",
    "get_provider_factory",
    "get_sms_channel",
    "switched_off",
]


@lru_cache(maxsize=1)
def get_provider_factory() -> ProviderFactory:
    from tidings.providers.factory import ProviderFactory

    return ProviderFactory()


def current_factory() -> ProviderFactory:
    """The container's factory with the live configuration in force now (tidings.live_config)."""
    return get_provider_factory().live()


def get_payment_gateway() -> PaymentGateway:
    return current_factory().cached_payment_gateway()


def get_email_channel(name: str = "sendgrid") -> EmailChannel:
    """ "sendgrid" or "ses"."""
    return current_factory().cached_email_channel(name)


def get_sms_channel(name: str = "twilio") -> SmsChannel:
    """ "twilio" or "sns"."""
    return current_factory().cached_sms_channel(name)


def switched_off(provider: str) -> bool:
    """Whether the live fallback switches send this provider's channel through its fallback only."""
    return current_factory().settings.switched_off(provider)
