"""``callback_url``: https only, to a public host, unless configuration allows plain http to a host."""

import json
import uuid

import boto3
import pytest
from support.lambda_context import NotifyApiContext as Context
from support.notify_api import start_notify_api

from tidings.notifications import store as notification_store
from tidings.outbound.urls import CallbackUrlRefused, check_callback_url, host_list

pytestmark = pytest.mark.unit

VALID = {
    "order_reference": "order-cb-1",
    "customer": {"name": "Grace Hopper", "email": "grace@example.com", "phone": "+14155550123"},
    "payment": {"amount": 4200, "currency": "usd", "payment_method": "pm_card_visa"},
    "receipt": {"subject": "Receipt", "text": "Thanks"},
    "sms": {"text": "Paid, thanks!"},
}


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example.com/tidings/events",
        "https://shop.example.com:8443/hook?tenant=7",
        "https://203.0.113.0.example.net/x",
        "https://8.8.8.8/hook",
    ],
)
def test_https_to_a_public_host_is_allowed(url: str) -> None:
    assert check_callback_url(url) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://shop.example.com/hook", "not_https"),
        ("ftp://shop.example.com/hook", "not_a_url"),
        ("shop.example.com/hook", "not_a_url"),
        ("https:///nohost", "not_a_url"),
        ("https://shop.example.com:99999/hook", "not_a_url"),
        ("https://user:pw@shop.example.com/hook", "credentials_in_url"),
        ("https://shop.example.com/hook#frag", "fragment_in_url"),
        ("https://169.254.169.254/latest/meta-data", "private_address"),
        ("https://127.0.0.1/hook", "private_address"),
        ("https://10.0.0.7/hook", "private_address"),
        ("https://[::1]/hook", "private_address"),
        ("https://shop.example.com/" + "a" * 2100, "not_a_url"),
    ],
)
def test_other_urls_are_refused_with_a_reason_and_without_repeating_the_url(url: str, reason: str) -> None:
    with pytest.raises(CallbackUrlRefused) as refused:
        check_callback_url(url)
    assert refused.value.reason == reason
    assert "example" not in str(refused.value)


def test_plain_http_reaches_only_the_hosts_configuration_lists() -> None:
    allowed = host_list(" 127.0.0.1, Receiver.Local ,")
    assert allowed == {"127.0.0.1", "receiver.local"}
    assert check_callback_url("http://127.0.0.1:8090/callbacks", allowed)
    assert check_callback_url("http://receiver.local/callbacks", allowed)
    with pytest.raises(CallbackUrlRefused):
        check_callback_url("http://127.0.0.2/callbacks", allowed)
    with pytest.raises(CallbackUrlRefused):
        check_callback_url("http://127.0.0.1/callbacks")  # not by default


def http_event(method, path, body):
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": "127.0.0.1", "protocol": "HTTP/1.1"},
            "requestId": str(uuid.uuid4()),
            "stage": "$default",
            "routeKey": f"{method} {path}",
            "authorizer": {"jwt": {"claims": {"sub": "client-a"}, "scopes": None}},
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


@pytest.fixture
def api(moto_aws, monkeypatch):
    handler = start_notify_api(
        monkeypatch, module_name="notify_api_cb", bulk_queue=True, CALLBACK_HTTP_ALLOWED_HOSTS="127.0.0.1"
    )
    module = handler.module

    def call(event):
        response = module.lambda_handler(event, Context())
        return response["statusCode"], json.loads(response["body"])

    yield call
    notification_store.get_store.cache_clear()


def test_a_request_with_a_callback_url_is_stored_with_it(api):
    # Given a request naming an https callback URL
    request = {**VALID, "callback_url": "https://shop.example.com/tidings/events"}

    # When it is accepted
    status, body = api(http_event("POST", "/notifications", request))

    # Then the notification keeps the URL its events go to
    assert status == 202
    stored = notification_store.get_store().get(body["notification_id"])
    assert stored.callback_url == "https://shop.example.com/tidings/events"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://shop.example.com/hook", "not_https"),
        ("https://169.254.169.254/latest", "private_address"),
        ("https://user:secret@shop.example.com/x", "credentials_in_url"),
        ("not a url", "not_a_url"),
    ],
)
def test_a_refused_callback_url_is_a_422_naming_the_field_and_starts_nothing(api, url, reason):
    status, body = api(http_event("POST", "/notifications", {**VALID, "callback_url": url}))

    assert status == 422
    assert body["code"] == "validation_error"
    [error] = body["errors"]
    assert error["loc"] == ["body", "callback_url"]
    assert error["type"] == reason
    assert "secret" not in json.dumps(body)
    assert (
        boto3.client("stepfunctions").list_executions(
            stateMachineArn=boto3.client("stepfunctions").list_state_machines()["stateMachines"][0][
                "stateMachineArn"
            ]
        )["executions"]
        == []
    )


def test_the_configured_local_receiver_may_be_called_over_http(api):
    request = {**VALID, "callback_url": "http://127.0.0.1:8090/callbacks"}
    assert api(http_event("POST", "/notifications", request))[0] == 202


def test_a_bulk_item_with_a_refused_callback_url_is_rejected_alone(api):
    items = [
        {**VALID, "order_reference": "bulk-cb-0", "callback_url": "https://shop.example.com/hook"},
        {**VALID, "order_reference": "bulk-cb-1", "callback_url": "http://shop.example.com/hook"},
    ]
    status, body = api(http_event("POST", "/notifications/bulk", {"items": items}))

    assert status == 202
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["items"][1]["errors"] == [
        {"loc": ["items", 1, "callback_url"], "type": "not_https", "message": "callback_url must use https"}
    ]
