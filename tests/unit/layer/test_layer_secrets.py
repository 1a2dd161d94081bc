"""Credentials from Secrets Manager (moto): cached with a TTL, refreshed on demand, never logged."""

import json

import pytest

from tidings import errors
from tidings.observability import redact
from tidings.secrets import CredentialStore

pytestmark = pytest.mark.unit


def put_secret(aws, name, value):
    return aws["secretsmanager"].create_secret(Name=name, SecretString=json.dumps(value))["ARN"]


def test_cached_until_refreshed(aws):
    arn = put_secret(aws, "tidings/test/stripe", {"api_key": "sk_test_unit_secret_key_1"})
    store = CredentialStore(ttl_seconds=300, client=aws["secretsmanager"])
    assert store.get("stripe", arn).api_key == "sk_test_unit_secret_key_1"
    # Given the secret is rotated
    aws["secretsmanager"].put_secret_value(
        SecretId=arn, SecretString=json.dumps({"api_key": "sk_test_unit_secret_key_2"})
    )
    # Then the cached value is served until a refresh asks Secrets Manager again
    assert store.get("stripe", arn).api_key == "sk_test_unit_secret_key_1"
    assert store.refresh("stripe", arn).api_key == "sk_test_unit_secret_key_2"
    assert store.get("stripe", arn).api_key == "sk_test_unit_secret_key_2"


def test_loaded_values_are_masked_in_any_later_log_text(aws):
    arn = put_secret(
        aws,
        "tidings/test/twilio",
        {
            "account_sid": "AC1",
            "api_key_sid": "SK1",
            "api_key_secret": "unit-twilio-api-key-secret",
            "from_number": "+15005550006",
        },
    )
    CredentialStore(client=aws["secretsmanager"]).get("twilio", arn)
    assert "unit-twilio-api-key-secret" not in redact("oops unit-twilio-api-key-secret")


def test_a_secret_missing_keys_is_an_auth_failure_naming_the_keys_not_the_values(aws):
    arn = put_secret(aws, "tidings/test/sendgrid", {"apikey": "SG.unit-key.unit-secret-part"})
    with pytest.raises(errors.AuthenticationFailed) as raised:
        CredentialStore(client=aws["secretsmanager"]).get("sendgrid", arn)
    assert raised.value.code == "secret_malformed"
    assert "api_key" in raised.value.message
    assert "SG." not in str(raised.value)


def test_an_unreadable_secret_is_an_auth_failure(aws):
    with pytest.raises(errors.AuthenticationFailed) as raised:
        CredentialStore(client=aws["secretsmanager"]).get("stripe", "tidings/test/missing")
    assert raised.value.code == "secret_unavailable"


def test_signing_keys_come_from_the_same_cache_and_are_masked_during_a_roll(aws):
    # Given a Stripe secret in the middle of a webhook key roll
    arn = put_secret(
        aws,
        "tidings/test/stripe-roll",
        {
            "api_key": "sk_test_unit_roll_key",
            "webhook_secret": "unit-new-signing-secret",
            "previous_webhook_secret": "unit-old-signing-secret",
            "previous_valid_until": 1767225600,
        },
    )
    store = CredentialStore(ttl_seconds=300, client=aws["secretsmanager"])
    # When the webhook receiver reads it as stored
    secret = store.secret("stripe", arn)
    # Then it sees both keys and the roll's end, and neither key can reach a log line
    assert secret["previous_webhook_secret"] == "unit-old-signing-secret"
    assert secret["previous_valid_until"] == 1767225600
    for key in ("unit-new-signing-secret", "unit-old-signing-secret"):
        assert key not in redact(f"oops {key}")
    # And it is cached until cleared, like the providers' credentials
    aws["secretsmanager"].put_secret_value(SecretId=arn, SecretString=json.dumps({"webhook_secret": "x" * 8}))
    assert store.secret("stripe", arn)["webhook_secret"] == "unit-new-signing-secret"
    store.clear()
    assert store.secret("stripe", arn)["webhook_secret"] == "x" * 8
