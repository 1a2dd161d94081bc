"""Test doubles for the unit tests: scripted httpx transports and in-memory credentials."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import httpx

from tidings.config import load_settings
from tidings.providers.factory import ProviderFactory
from tidings.secrets import SendGridCredentials, StripeCredentials, TwilioCredentials

#: Values that must never appear in a captured log line (checked after every test in this folder).
SECRET_VALUES = [
    "sk_test_unit_secret_key_1",
    "sk_test_unit_secret_key_2",
    "SG.unit-key.unit-secret-part",
    "unit-twilio-api-key-secret",
    "unit-twilio-rotated-secret",
]
#: A customer's name, a receipt's text and an SMS body as the tests send them: content a log never holds.
CUSTOMER_NAME = "Jane Quincy Doe"
RECEIPT_TEXT = "Receipt: three brass widgets, thank you"
SMS_BODY = "Your widgets are paid, thank you"
PERSONAL_VALUES = [
    "jane.doe@example.com",
    "+447700900123",
    "+15005550006",
    "4242424242424242",
    "4000 0000 0000 0002",
    CUSTOMER_NAME,
    RECEIPT_TEXT,
    SMS_BODY,
]

UNIT_ENV = {
    "STRIPE_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:stripe",
    "SENDGRID_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:sendgrid",
    "TWILIO_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:twilio",
    "STRIPE_API_BASE_URL": "https://stripe.test",
    "SENDGRID_API_BASE_URL": "https://sendgrid.test",
    "TWILIO_API_BASE_URL": "https://twilio.test",
    "RECEIPT_FROM_ADDRESS": "receipts@shop.example",
    "STRIPE_RATE_PER_SECOND": "1000",
    "SENDGRID_RATE_PER_SECOND": "1000",
    "TWILIO_RATE_PER_SECOND": "1000",
}

CREDENTIALS = {
    "stripe": StripeCredentials(api_key="sk_test_unit_secret_key_1"),
    "sendgrid": SendGridCredentials(api_key="SG.unit-key.unit-secret-part"),
    "twilio": TwilioCredentials(
        account_sid="AC11111111111111111111111111111111",
        api_key_sid="SK22222222222222222222222222222222",
        api_key_secret="unit-twilio-api-key-secret",
        from_number="+15005550006",
    ),
}


class StaticCredentials:
    """Credentials as the CredentialStore returns them; ``rotated`` is what a refresh finds."""

    def __init__(self, rotated: dict | None = None) -> None:
        self.current = dict(CREDENTIALS)
        self.rotated = rotated or {}
        self.refreshes = 0

    def get(self, provider: str, secret_id: str, *, refresh: bool = False):
        if refresh:
            self.refreshes += 1
            self.current.update(self.rotated)
        return self.current[provider]


class Scripted:
    """An httpx transport answering from a script: responses (or exceptions) in order, then ``last``."""

    def __init__(self, script: Iterable[httpx.Response | Exception | Callable], last=None) -> None:
        self.script = list(script)
        self.last = last
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0) if self.script else self.last
        if callable(step) and not isinstance(step, httpx.Response):
            step = step(request)
        if isinstance(step, Exception):
            raise step
        return step

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def factory(transport: Scripted, clock, *, env: dict | None = None, credentials=None, aws=None, **options):
    settings = load_settings({**UNIT_ENV, **(env or {})})
    return ProviderFactory(
        settings,
        timing=clock.timing(),
        credential_store=credentials or StaticCredentials(),
        http_client=transport.client(),
        dynamodb_client=aws["dynamodb"] if aws else None,
        **options,
    )
