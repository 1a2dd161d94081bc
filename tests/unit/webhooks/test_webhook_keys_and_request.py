"""Secret rolls and the rebuilt request: the parts of verification that are not cryptography."""

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.webhook_signing import NOW, form, stripe_header, twilio_signature

from tidings.webhooks.errors import WebhookSignatureInvalid
from tidings.webhooks.keys import SigningKeyMissing, accepted_keys
from tidings.webhooks.request import WebhookRequest
from tidings.webhooks.stripe import verify_stripe_signature
from tidings.webhooks.twilio import verify_twilio_signature

pytestmark = pytest.mark.unit

ROLLING = {
    "api_key": "sk_live_not_used_here",
    "webhook_secret": "whsec_new",
    "previous_webhook_secret": "whsec_old",
    "previous_valid_until": NOW + 3600,
}
BODY = b'{"id": "evt_roll"}'


def test_previous_secret_is_accepted_while_the_roll_is_in_progress():
    # Given a roll that ends in an hour, and a delivery signed with the old secret
    keys = accepted_keys(ROLLING, "webhook_secret", now=NOW)
    # Then both keys are tried, current first, and the old signature passes
    assert keys == ["whsec_new", "whsec_old"]
    assert verify_stripe_signature(BODY, stripe_header(BODY, "whsec_old"), keys, now=NOW) == NOW


@given(after=st.integers(min_value=0, max_value=10**8))
def test_previous_secret_is_refused_once_the_roll_has_ended(after):
    now = NOW + 3600 + after
    keys = accepted_keys(ROLLING, "webhook_secret", now=now)
    assert keys == ["whsec_new"]
    with pytest.raises(WebhookSignatureInvalid):
        verify_stripe_signature(BODY, stripe_header(BODY, "whsec_old", timestamp=now), keys, now=now)


def test_previous_secret_without_an_end_is_never_accepted():
    secret = {"webhook_secret": "whsec_new", "previous_webhook_secret": "whsec_old"}
    assert accepted_keys(secret, "webhook_secret", now=NOW) == ["whsec_new"]


def test_missing_current_key_is_a_configuration_fault():
    with pytest.raises(SigningKeyMissing):
        accepted_keys({"api_key": "x"}, "webhook_secret", now=NOW)


def http_api_event(**overrides):
    event = {
        "version": "2.0",
        "routeKey": "POST /webhooks/twilio",
        "rawPath": "/webhooks/twilio",
        "rawQueryString": "notification_id=n-1",
        "headers": {
            "host": "abc123.execute-api.eu-west-1.amazonaws.com",
            "x-forwarded-proto": "https",
            "content-type": "application/x-www-form-urlencoded",
        },
        "requestContext": {
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "stage": "$default",
            "http": {"method": "POST", "path": "/webhooks/twilio"},
        },
        "body": "MessageStatus=sent",
        "isBase64Encoded": False,
    }
    event.update(overrides)
    return event


def test_url_is_rebuilt_from_host_path_and_query():
    request = WebhookRequest.from_http_api_event(http_api_event())
    assert (
        request.url
        == "https://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/twilio?notification_id=n-1"
    )
    assert request.query == {"notification_id": ["n-1"]}


def test_named_stage_already_in_raw_path_is_not_doubled():
    event = http_api_event(rawPath="/dev/webhooks/twilio", rawQueryString="")
    event["requestContext"]["stage"] = "dev"
    assert WebhookRequest.from_http_api_event(event).url == (
        "https://abc123.execute-api.eu-west-1.amazonaws.com/dev/webhooks/twilio"
    )


def test_named_stage_missing_from_raw_path_is_added():
    event = http_api_event(rawQueryString="")
    event["requestContext"]["stage"] = "dev"
    assert WebhookRequest.from_http_api_event(event).url.endswith("/dev/webhooks/twilio")


def test_custom_domain_in_host_header_wins_and_local_port_is_kept():
    event = http_api_event(rawQueryString="")
    event["headers"]["host"] = "127.0.0.1:3000"
    event["headers"]["x-forwarded-proto"] = "http"
    assert WebhookRequest.from_http_api_event(event).url == "http://127.0.0.1:3000/webhooks/twilio"


def test_without_host_header_the_domain_name_is_used():
    event = http_api_event(rawQueryString="")
    del event["headers"]["host"]
    event["requestContext"]["domainName"] = "hooks.example.com"
    assert WebhookRequest.from_http_api_event(event).url == "https://hooks.example.com/webhooks/twilio"


def test_base64_body_is_verified_as_the_bytes_the_provider_sent():
    # Given a form body that API Gateway handed over base64-encoded
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "Body": "caf\u00e9"}
    raw = form(params)
    event = http_api_event(body=base64.b64encode(raw).decode(), isBase64Encoded=True)
    request = WebhookRequest.from_http_api_event(event)
    # Then the decoded bytes, not the base64 text, are what is verified
    assert request.body == raw
    signature = twilio_signature(request.url, params, "token")
    assert verify_twilio_signature(request.url, request.body, signature, ["token"])["Body"] == ["caf\u00e9"]


def test_corrupt_base64_body_is_refused():
    with pytest.raises(ValueError, match="base64"):
        WebhookRequest.from_http_api_event(http_api_event(body="***", isBase64Encoded=True))


def test_header_lookup_is_case_insensitive():
    event = http_api_event()
    event["headers"] = {"X-Twilio-Signature": "abc", "Host": "h.example.com"}
    request = WebhookRequest.from_http_api_event(event)
    assert request.header("x-twilio-signature") == "abc"
    assert request.url.startswith("https://h.example.com/")
