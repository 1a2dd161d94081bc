"""Settings are validated at cold start and a bad one is named in the error."""

import pytest

from tidings.config import ConfigurationError, load_settings

pytestmark = pytest.mark.unit


def test_defaults_fit_the_lambda_timeout_and_the_documented_limits():
    settings = load_settings({})
    assert settings.http_timeout_seconds == 10.0
    assert settings.call_budget_seconds < 30  # template Globals Timeout
    assert settings.transient_max_attempts == 3
    assert settings.rate_limited_max_attempts == 10


@pytest.mark.parametrize(
    ("variable", "value", "expected_fragment"),
    [
        ("STRIPE_RATE_PER_SECOND", "-5", "greater than 0"),
        ("TWILIO_RATE_PER_SECOND", "ten", "valid number"),
        ("SENDGRID_API_BASE_URL", "api.sendgrid.com", "http(s) URL"),
        ("RECEIPT_FROM_ADDRESS", "not-an-address", "e-mail address"),
        ("TIDINGS_RETRY_TIME_SCALE", "-1", "greater than or equal to 0"),
        ("TIDINGS_TRANSIENT_MAX_ATTEMPTS", "0", "greater than or equal to 1"),
    ],
)
def test_a_bad_setting_is_named_with_the_reason(variable, value, expected_fragment):
    # Given one invalid environment variable
    # When the settings load (cold start)
    with pytest.raises(ConfigurationError) as raised:
        load_settings({variable: value})
    # Then the message names the variable and says what is wrong
    assert variable in str(raised.value)
    assert expected_fragment in str(raised.value)


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"STRIPE_RATE_PER_SECOND": "0", "TIDINGS_HTTP_TIMEOUT_SECONDS": "x"})
    assert "STRIPE_RATE_PER_SECOND" in str(raised.value)
    assert "TIDINGS_HTTP_TIMEOUT_SECONDS" in str(raised.value)


def test_a_provider_client_without_its_secret_arn_fails_naming_it():
    settings = load_settings({"STRIPE_API_BASE_URL": "http://127.0.0.1:9"})
    with pytest.raises(ConfigurationError, match="STRIPE_SECRET_ARN"):
        settings.provider("stripe")


def test_provider_settings_carry_rate_and_burst_from_the_environment():
    settings = load_settings(
        {
            "TWILIO_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:t",
            "TWILIO_RATE_PER_SECOND": "4",
            "TIDINGS_RATE_LIMIT_BURST_SECONDS": "2.5",
            "TWILIO_API_BASE_URL": "http://127.0.0.1:8080/",
        }
    )
    twilio = settings.provider("twilio")
    assert twilio.rate_per_second == 4
    assert twilio.burst == 10
    assert twilio.base_url == "http://127.0.0.1:8080"


def test_empty_values_mean_unset_not_invalid():
    settings = load_settings({"RATE_LIMIT_TABLE": "", "STRIPE_RATE_PER_SECOND": ""})
    assert settings.rate_limit_table is None
    assert settings.stripe_rate_per_second == 25.0


def test_the_process_environment_is_read_by_the_same_models_and_named_when_bad(monkeypatch):
    from tidings.config import Settings, load

    # Given the variables a function's template entry sets, one of them invalid
    monkeypatch.setenv("TWILIO_RATE_PER_SECOND", "4")
    monkeypatch.setenv("RATE_LIMIT_TABLE", "")
    assert load(Settings).twilio_rate_per_second == 4
    assert load(Settings).rate_limit_table is None
    monkeypatch.setenv("TIDINGS_BREAKER_MINIMUM_CALLS", "0")
    # When the settings load at cold start, then the variable is named and its value is not repeated
    with pytest.raises(ConfigurationError, match="TIDINGS_BREAKER_MINIMUM_CALLS") as raised:
        load(Settings)
    assert "'0'" not in str(raised.value)


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({}, "NOTIFICATIONS_TABLE"),
        ({"NOTIFICATIONS_TABLE": "n", "REDELIVERY_MAX_TRIES": "0"}, "REDELIVERY_MAX_TRIES"),
        ({"NOTIFICATIONS_TABLE": "n", "REDELIVERY_MAX_TRIES": "3"}, "SMS_DEAD_LETTER_QUEUE_URL"),
        (
            {
                "NOTIFICATIONS_TABLE": "n",
                "REDELIVERY_MAX_TRIES": "3",
                "REDELIVERY_BASE_DELAY_SECONDS": "60",
                "REDELIVERY_MAX_DELAY_SECONDS": "43201",
                "EMAIL_DEAD_LETTER_QUEUE_URL": "e",
                "SMS_DEAD_LETTER_QUEUE_URL": "s",
            },
            "REDELIVERY_MAX_DELAY_SECONDS",
        ),
    ],
)
def test_a_missing_or_bad_redelivery_setting_is_named(environ, named):
    from tidings.config import load
    from tidings.saga.settings import RedeliverySettings

    with pytest.raises(ConfigurationError, match=named):
        load(RedeliverySettings, environ)


def test_the_twilio_status_callback_carries_the_notification_and_is_off_when_unset():
    from tidings.config import load
    from tidings.saga.settings import StepSettings

    on = load(
        StepSettings, {"NOTIFICATIONS_TABLE": "n", "TWILIO_STATUS_CALLBACK_URL": "https://x/webhooks/twilio"}
    )
    assert on.status_callback_url("n-1") == "https://x/webhooks/twilio?notification_id=n-1"
    off = load(StepSettings, {"NOTIFICATIONS_TABLE": "n", "TWILIO_STATUS_CALLBACK_URL": ""})
    assert off.status_callback_url("n-1") is None


def test_a_comma_separated_list_is_read_from_the_process_environment(monkeypatch):
    from tidings.config import load
    from tidings.rotation.settings import RotationSettings

    monkeypatch.setenv("SENDGRID_API_KEY_SCOPES", "mail.send, scopes.read")
    assert load(RotationSettings).sendgrid_key_scopes == ("mail.send", "scopes.read")


def test_breaker_thresholds_and_bucket_settings_come_as_one_model_each_with_defaults():
    from tidings.config import BreakerSettings, RateLimitSettings

    # Given the environment names only a few of them
    settings = load_settings(
        {"TIDINGS_BREAKER_ERROR_THRESHOLD_PERCENT": "40", "TIDINGS_BREAKER_MINIMUM_CALLS": "10"}
    )
    # Then the breaker's thresholds are one model, the rest at their defaults
    breaker = settings.breaker()
    assert breaker == BreakerSettings(error_threshold_percent=40, minimum_calls=10)
    assert (breaker.window_seconds, breaker.window_buckets, breaker.bucket_seconds) == (60, 6, 10.0)
    assert (breaker.recovery_seconds, breaker.probe_successes) == (30, 1)
    # And another source (live configuration) builds the same model from the same field names
    assert BreakerSettings.model_validate({"error_threshold_percent": 40, "minimum_calls": 10}) == breaker
    # And each service's bucket is one model too
    assert settings.rate_limits("ses") == RateLimitSettings(
        service="ses", rate_per_second=14.0, burst=14.0, slowdown_below_percent=20.0
    )
    with pytest.raises(ValueError, match="error_threshold_percent"):
        BreakerSettings(error_threshold_percent=0)
