"""Live configuration (AppConfig through Powertools): validation, last good value, the alarm metric, and
the provider factory's settings seam."""

from __future__ import annotations

import io
import json

import pytest

from tidings import live_config
from tidings.config import load_settings
from tidings.live_config import (
    AppConfigSource,
    ConfigurationUnavailable,
    InvalidLiveConfiguration,
    LiveSettings,
)
from tidings.providers.factory import ProviderFactory

pytestmark = pytest.mark.unit

BASE_ENV = {
    "TWILIO_RATE_PER_SECOND": "10",
    "TWILIO_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:t",
    "RECEIPT_FROM_ADDRESS": "receipts@example.com",
}


class ScriptedSource:
    """A ConfigurationSource whose document the test changes (as an operator deploys a new version)."""

    def __init__(self, document: bytes | None = b"{}") -> None:
        self.document = document
        self.fetches = 0

    def fetch(self) -> bytes:
        self.fetches += 1
        if self.document is None:
            raise ConfigurationUnavailable("ResourceNotFoundException")
        return self.document


def metrics_named(output: str, name: str) -> int:
    """How many EMF records in ``output`` carry the metric ``name``."""
    count = 0
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            record = json.loads(line)
            metrics = record["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            count += any(metric["Name"] == name for metric in metrics)
    return count


def test_a_document_overrides_only_the_settings_it_names():
    # Given the environment's settings (the template's values)
    base = load_settings(BASE_ENV)
    # When the live document lowers Twilio's rate and turns on SES only
    source = ScriptedSource(b'{"twilio_rate_per_second": 2, "email_providers": "ses_only"}')
    settings = LiveSettings(base, source).current()
    # Then those two change and everything else keeps the environment's value
    assert settings.twilio_rate_per_second == 2
    assert settings.rate_limit("twilio") == (2, 2)
    assert settings.switched_off("sendgrid")
    assert not settings.switched_off("twilio")
    assert settings.stripe_rate_per_second == base.stripe_rate_per_second
    assert settings.twilio_secret_arn == base.twilio_secret_arn


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (b"not json", "the document is not JSON"),
        (b"[1, 2]", "the document must be a JSON object"),
        (b'{"twilio_secret_arn": "x"}', "twilio_secret_arn: not a setting that can change live"),
        (b'{"twilio_rate_per_second": 0}', "twilio_rate_per_second: Input should be greater than 0"),
        (b'{"sms_providers": "carrier_pigeon"}', "sms_providers: Input should be"),
        (b'{"transient_max_attempts": 50}', "transient_max_attempts: Input should be less than or equal"),
    ],
)
def test_a_bad_document_is_refused_naming_the_setting(document, problem):
    with pytest.raises(InvalidLiveConfiguration) as refused:
        live_config.validate(document)
    assert any(p.startswith(problem) for p in refused.value.problems), refused.value.problems


def test_a_bad_change_keeps_the_last_good_settings_and_raises_the_alarm_metric_once(capsys):
    # Given a container running on a good live configuration
    source = ScriptedSource(b'{"twilio_rate_per_second": 4}')
    live = LiveSettings(load_settings(BASE_ENV), source)
    good = live.current()
    assert good.twilio_rate_per_second == 4
    capsys.readouterr()
    # When an invalid version is deployed and the container polls twice
    source.document = b'{"twilio_rate_per_second": -3, "email_providers": "ses_only"}'
    first, second = live.current(), live.current()
    # Then the last good settings stay, as a whole (no half-applied document)
    assert first is good
    assert second is good
    assert first.email_providers == "sendgrid_then_ses"
    # And the rejection is counted once for that document, and logged without its values
    output = capsys.readouterr().out
    assert metrics_named(output, "LiveConfigurationRejected") == 1
    assert "-3" not in output
    # When a good version follows, it applies
    source.document = b'{"twilio_rate_per_second": 3}'
    assert live.current().twilio_rate_per_second == 3
    assert metrics_named(capsys.readouterr().out, "LiveConfigurationApplied") == 1


def test_an_unreachable_configuration_keeps_the_last_good_settings(capsys):
    source = ScriptedSource(b'{"sms_providers": "sns_only"}')
    live = LiveSettings(load_settings(BASE_ENV), source)
    assert live.current().sms_providers == "sns_only"
    source.document = None
    assert live.current().sms_providers == "sns_only"
    assert live.current().sms_providers == "sns_only"
    assert metrics_named(capsys.readouterr().out, "LiveConfigurationUnavailable") == 1


def test_without_appconfig_names_the_environment_is_the_configuration():
    base = load_settings(BASE_ENV)
    live = LiveSettings.from_settings(base)
    assert live.source is None
    assert live.current() is base


def test_the_appconfig_document_schema_says_what_the_settings_model_says():
    schema = live_config.json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(live_config.LIVE_FIELDS)
    assert schema["properties"]["twilio_rate_per_second"] == {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
    }
    assert schema["properties"]["email_providers"]["enum"] == ["sendgrid_then_ses", "ses_only"]


class FakeAppConfigData:
    """The two appconfigdata calls Powertools makes; an empty body means "unchanged since last poll"."""

    def __init__(self, content: bytes) -> None:
        self.content = content
        self.sessions: list[dict] = []
        self.polls = 0
        self._served: bytes | None = None

    def start_configuration_session(self, **arguments):
        self.sessions.append(arguments)
        return {"InitialConfigurationToken": "token-0"}

    def get_latest_configuration(self, ConfigurationToken):  # noqa: N803 (boto3's name)
        self.polls += 1
        body = b"" if self.content == self._served else self.content
        self._served = self.content
        return {
            "Configuration": io.BytesIO(body),
            "NextPollConfigurationToken": f"token-{self.polls}",
        }


def test_the_appconfig_source_polls_through_powertools_within_its_ttl():
    # Given AppConfig holding a document, and a source with a TTL of zero (tests: every read polls)
    data = FakeAppConfigData(b'{"twilio_rate_per_second": 5}')
    source = AppConfigSource("tidings", "local", "live", ttl_seconds=0, client=data)
    # When it is read three times, the document changing before the third
    first, second = source.fetch(), source.fetch()
    data.content = b'{"twilio_rate_per_second": 6}'
    third = source.fetch()
    # Then one session was started, naming the profile, and an unchanged poll kept the last document
    assert data.sessions == [
        {
            "ConfigurationProfileIdentifier": "live",
            "ApplicationIdentifier": "tidings",
            "EnvironmentIdentifier": "local",
            "RequiredMinimumPollIntervalInSeconds": 15,
        }
    ]
    assert first == second == b'{"twilio_rate_per_second": 5}'
    assert third == b'{"twilio_rate_per_second": 6}'
    assert data.polls == 3


def test_a_long_ttl_serves_the_cached_document_without_polling():
    data = FakeAppConfigData(b"{}")
    source = AppConfigSource("tidings", "local", "live", ttl_seconds=300, client=data)
    source.fetch()
    data.content = b'{"twilio_rate_per_second": 6}'
    assert source.fetch() == b"{}"
    assert data.polls == 1


def test_the_factory_rebuilds_its_channels_only_when_the_live_settings_change():
    # Given a container's factory over a live source
    source = ScriptedSource(b"{}")
    factory = ProviderFactory(load_settings(BASE_ENV), credential_store=object())
    factory.live_settings = LiveSettings(factory.settings, source)  # type: ignore[misc]
    # When nothing changes, the same channel (and its bucket) is used again
    live = factory.live()
    channel = live.cached_sms_channel("twilio")
    assert factory.live().cached_sms_channel("twilio") is channel
    # When Twilio's rate is lowered, the next send uses a channel whose bucket has the new rate
    source.document = b'{"twilio_rate_per_second": 1.5}'
    changed = factory.live()
    assert changed is not live
    new_channel = changed.cached_sms_channel("twilio")
    assert new_channel is not channel
    assert new_channel.deliverer.http.caller.limiter.bucket.rate == 1.5
    # And the clients are shared with the container's factory, not built again
    assert changed.http is factory.http
    assert factory.live() is changed
