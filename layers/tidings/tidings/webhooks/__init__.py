"""Inbound provider webhooks: Stripe, SendGrid and Twilio.

Verification (``stripe``, ``sendgrid``, ``twilio``) is pure: it takes the exact bytes the provider sent,
the header values, the accepted keys and the current time, and either returns or raises
``WebhookSignatureInvalid``. Nothing here does I/O at import time; the receiver and processor Lambdas
build their AWS clients themselves, once per container.
"""
