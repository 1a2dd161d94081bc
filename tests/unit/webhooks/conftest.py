import pytest
from support.webhook_signing import SendGridKeyPair


@pytest.fixture(scope="session")
def sendgrid_keys() -> SendGridKeyPair:
    return SendGridKeyPair()


@pytest.fixture(scope="session")
def other_sendgrid_keys() -> SendGridKeyPair:
    return SendGridKeyPair()
