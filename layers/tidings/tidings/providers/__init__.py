"""Provider channels for the saga: payment (Stripe), e-mail (SendGrid, SES), SMS (Twilio, SNS).

The factories build a channel on first use and keep it for the container's life; a handler that only
sends SMS never imports the Stripe or SendGrid code.

    gateway = get_payment_gateway()            # .charge / .retrieve / .cancel / .refund
    email = get_email_channel("sendgrid")      # or "ses"; .name, .send(EmailMessage) -> DeliveryReceipt
    sms = get_sms_channel("twilio")            # or "sns";  .name, .send(SmsMessage) -> DeliveryReceipt
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from tidings.providers.channels import EmailChannel, PaymentGateway, SmsChannel
    from tidings.providers.factory import ProviderFactory

__all__ = ["get_email_channel", "get_payment_gateway", "get_provider_factory", "get_sms_channel"]


@lru_cache(maxsize=1)
def get_provider_factory() -> ProviderFactory:
    from tidings.providers.factory import ProviderFactory

    return ProviderFactory()


@lru_cache(maxsize=1)
def get_payment_gateway() -> PaymentGateway:
    return get_provider_factory().payment_gateway()


@lru_cache(maxsize=2)
def get_email_channel(name: Literal["sendgrid", "ses"] = "sendgrid") -> EmailChannel:
    return get_provider_factory().email_channel(name)


@lru_cache(maxsize=2)
def get_sms_channel(name: Literal["twilio", "sns"] = "twilio") -> SmsChannel:
    return get_provider_factory().sms_channel(name)
