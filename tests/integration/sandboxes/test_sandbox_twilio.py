"""The Twilio sandbox answers like api.twilio.com's 2010-04-01 Messages resource."""

from __future__ import annotations

import re

import httpx
import pytest
from support.sandboxes import TWILIO_MESSAGES

from tidings_local.sandboxes import credentials

pytestmark = pytest.mark.integration

CUSTOMER = "+447700900123"


def send(http: httpx.Client, **params: str) -> httpx.Response:
    return http.post(TWILIO_MESSAGES, data={"To": CUSTOMER, "From": credentials.TWILIO_FROM_NUMBER, **params})


def test_created_message_is_201_queued_with_an_sm_sid(twilio_http):
    # When an SMS is sent
    response = send(twilio_http, Body="Your receipt is on its way")
    # Then Twilio's message resource, queued, and a request id
    assert response.status_code == 201
    message = response.json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", message["sid"])
    assert message["status"] == "queued"
    assert message["to"] == CUSTOMER
    assert message["from"] == credentials.TWILIO_FROM_NUMBER
    assert message["account_sid"] == credentials.TWILIO_ACCOUNT_SID
    assert message["direction"] == "outbound-api"
    assert message["num_segments"] == "1"
    assert message["uri"] == TWILIO_MESSAGES.replace(".json", f"/{message['sid']}.json")
    assert re.fullmatch(r"RQ[0-9a-f]{32}", response.headers["Twilio-Request-Id"])


def test_message_can_be_fetched_and_moves_on_to_delivered(twilio, twilio_http):
    sid = send(twilio_http, Body="hello").json()["sid"]
    twilio.control.wait_for_webhooks()
    fetched = twilio_http.get(TWILIO_MESSAGES.replace(".json", f"/{sid}.json"))
    assert fetched.status_code == 200
    assert fetched.json()["status"] == "delivered"
    assert fetched.json()["date_sent"] is not None


def test_account_sid_and_auth_token_work_as_well_as_an_api_key(twilio):
    response = httpx.post(
        f"{twilio.base_url}{TWILIO_MESSAGES}",
        data={"To": CUSTOMER, "From": credentials.TWILIO_FROM_NUMBER, "Body": "x"},
        auth=(credentials.TWILIO_ACCOUNT_SID, credentials.TWILIO_AUTH_TOKEN),
        trust_env=False,
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    "auth",
    [None, (credentials.TWILIO_ACCOUNT_SID, "wrong-token"), (credentials.TWILIO_API_KEY_SID, "wrong-secret")],
)
def test_bad_credentials_get_20003_and_401(twilio, auth):
    response = httpx.post(
        f"{twilio.base_url}{TWILIO_MESSAGES}",
        data={"To": CUSTOMER, "From": credentials.TWILIO_FROM_NUMBER, "Body": "x"},
        auth=auth,
        trust_env=False,
    )
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == 20003
    assert body["status"] == 401
    assert body["more_info"] == "https://www.twilio.com/docs/errors/20003"
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Twilio API"'
    assert twilio.control.state()["messages"] == []


def test_another_accounts_path_is_refused(twilio_http):
    response = twilio_http.post(
        "/2010-04-01/Accounts/AC11111111111111111111111111111111/Messages.json",
        data={"To": CUSTOMER, "From": credentials.TWILIO_FROM_NUMBER, "Body": "x"},
    )
    assert response.status_code == 401
    assert response.json()["code"] == 20003


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", 21211),  # invalid number
        ("+15005550002", 21612),  # cannot route
        ("+15005550003", 21408),  # no permission for the region
        ("+15005550004", 21610),  # unsubscribed (STOP)
        ("+15005550009", 21614),  # cannot receive SMS
        ("07700 900123", 21211),  # not E.164
    ],
)
def test_magic_to_numbers_fail_with_twilios_codes(twilio, twilio_http, to, code):
    response = send(twilio_http, To=to, Body="x")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code
    assert body["status"] == 400
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert twilio.control.state()["messages"] == []


@pytest.mark.parametrize(
    ("sender", "code"),
    [("+15005550001", 21212), ("+15005550007", 21606), ("+15005550008", 21611), ("+14155550100", 21606)],
)
def test_from_numbers_not_usable_fail_with_twilios_codes(twilio_http, sender, code):
    response = send(twilio_http, From=sender, Body="x")
    assert response.status_code == 400
    assert response.json()["code"] == code


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"To": ""}, 21604),
        ({"From": ""}, 21603),
        ({}, 21602),
        ({"Body": "x" * 1601}, 21617),
        ({"Body": "x", "StatusCallback": "ftp://nope"}, 21609),
    ],
)
def test_missing_or_invalid_fields(twilio_http, params, code):
    response = send(twilio_http, **params)
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_messaging_service_sid_replaces_from(twilio_http):
    response = twilio_http.post(
        TWILIO_MESSAGES, data={"To": CUSTOMER, "MessagingServiceSid": "MG" + "a" * 32, "Body": "x"}
    )
    assert response.status_code == 201
    assert response.json()["status"] == "accepted"
    assert response.json()["messaging_service_sid"] == "MG" + "a" * 32


def test_unknown_message_is_20404(twilio_http):
    response = twilio_http.get(TWILIO_MESSAGES.replace(".json", "/SM" + "0" * 32 + ".json"))
    assert response.status_code == 404
    assert response.json()["code"] == 20404
