"""Each provider's real error bodies become the typed errors, with the right retry behaviour.

Bodies are the providers' documented shapes (Stripe error object, SendGrid v3 errors array,
Twilio REST error), answered by an httpx MockTransport; request counts show what was retried.
"""

import json
from types import SimpleNamespace

import httpx
import pytest
from support.provider_fakes import Scripted, factory

import tidings.providers._errors as provider_errors
from tidings import errors
from tidings.providers.models import ChargeRequest, EmailMessage, SmsMessage

pytestmark = pytest.mark.unit

CHARGE = ChargeRequest(
    amount=2500,
    currency="GBP",
    payment_method="pm_card_visa",
    description="order 42",
    metadata={"order_id": "42"},
    idempotency_key="charge-42",
    receipt_email="jane.doe@example.com",
)
EMAIL = EmailMessage(
    to="jane.doe@example.com",
    to_name="Jane",
    subject="Your receipt",
    text="Thanks",
    idempotency_key="email-42",
)
SMS = SmsMessage(
    to="+447700900123", body="Paid", idempotency_key="sms-42", status_callback_url="https://h/cb?x=1"
)


def stripe_body(**error):
    return {"error": {"message": "msg", **error}}


@pytest.mark.parametrize(
    ("status", "body", "error_type", "attrs"),
    [
        (
            402,
            stripe_body(type="card_error", code="card_declined", decline_code="insufficient_funds"),
            errors.PaymentDeclined,
            {"decline_code": "insufficient_funds", "code": "card_declined"},
        ),
        (
            402,
            stripe_body(type="card_error", code="expired_card"),
            errors.PaymentDeclined,
            {"decline_code": "expired_card"},
        ),
        (
            402,
            stripe_body(type="card_error", code="processing_error"),
            errors.PaymentDeclined,
            {"decline_code": "processing_error"},
        ),
        (
            400,
            stripe_body(type="invalid_request_error", code="parameter_invalid_integer", param="amount"),
            errors.InvalidRequest,
            {"field": "amount", "code": "parameter_invalid_integer"},
        ),
        (
            400,
            stripe_body(type="idempotency_error", message="Keys for idempotent requests can only be used..."),
            errors.IdempotencyConflict,
            {"code": "idempotency_error"},
        ),
        (
            409,
            stripe_body(type="invalid_request_error", code="idempotency_key_in_use"),
            errors.IdempotencyConflict,
            {"code": "idempotency_key_in_use"},
        ),
        (
            401,
            stripe_body(type="invalid_request_error", message="Invalid API Key provided: sk_test_****_1"),
            errors.AuthenticationFailed,
            {"status": 401},
        ),
        (
            404,
            stripe_body(type="invalid_request_error", code="resource_missing", param="intent"),
            errors.ResourceNotFound,
            {"code": "resource_missing"},
        ),
    ],
)
def test_stripe_permanent_errors_are_typed_and_sent_once(clock, status, body, error_type, attrs):
    # Given Stripe answers with a permanent error body
    transport = Scripted([], last=httpx.Response(status, json=body, headers={"Request-Id": "req_abc"}))
    gateway = factory(transport, clock).payment_gateway()
    # When the card is charged
    with pytest.raises(error_type) as raised:
        gateway.charge(CHARGE)
    # Then exactly one request was made and the error carries the provider's detail
    assert len(transport.requests) == 1
    assert type(raised.value) is error_type
    assert raised.value.request_id == "req_abc"
    for name, value in attrs.items():
        assert getattr(raised.value, name) == value


def test_stripe_charge_is_form_encoded_with_brackets_and_an_idempotency_key(clock):
    transport = Scripted(
        [httpx.Response(200, json={"id": "pi_1", "status": "succeeded", "amount": 2500, "currency": "gbp"})]
    )
    factory(transport, clock).payment_gateway().charge(CHARGE)
    request = transport.requests[0]
    form = dict(httpx.QueryParams(request.content.decode()))
    assert request.headers["Idempotency-Key"] == "charge-42"
    assert request.headers["Authorization"] == "Bearer sk_test_unit_secret_key_1"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form["metadata[order_id]"] == "42"
    assert form["payment_method_types[0]"] == "card"
    assert form["confirm"] == "true"
    assert form["currency"] == "gbp"


def test_stripe_requires_action_is_a_result_not_an_error(clock):
    body = {
        "id": "pi_3ds",
        "status": "requires_action",
        "amount": 2500,
        "currency": "gbp",
        "next_action": {
            "type": "redirect_to_url",
            "redirect_to_url": {"url": "https://hooks.stripe.test/3ds"},
        },
    }
    transport = Scripted([httpx.Response(200, json=body)])
    result = factory(transport, clock).payment_gateway().charge(CHARGE)
    assert result.status == "requires_action"
    assert result.next_action_url == "https://hooks.stripe.test/3ds"


def test_stripe_refund_and_cancel_send_their_idempotency_keys(clock):
    transport = Scripted(
        [
            httpx.Response(
                200, json={"id": "re_1", "status": "succeeded", "payment_intent": "pi_1", "amount": 700}
            ),
            httpx.Response(200, json={"id": "pi_1", "status": "canceled", "amount": 2500, "currency": "gbp"}),
        ]
    )
    gateway = factory(transport, clock).payment_gateway()
    refund = gateway.refund("pi_1", idempotency_key="refund-42", amount=700)
    canceled = gateway.cancel("pi_1", idempotency_key="cancel-42")
    assert (refund.refund_id, refund.amount, canceled.status) == ("re_1", 700, "canceled")
    assert [r.headers["Idempotency-Key"] for r in transport.requests] == ["refund-42", "cancel-42"]
    assert transport.requests[0].url.path == "/v1/refunds"
    assert transport.requests[1].url.path == "/v1/payment_intents/pi_1/cancel"


def test_an_id_that_could_change_the_path_is_refused_without_a_request(clock):
    transport = Scripted([])
    with pytest.raises(errors.InvalidRequest) as raised:
        factory(transport, clock).payment_gateway().retrieve("../v1/refunds")
    assert raised.value.field == "payment_intent_id"
    assert transport.requests == []


@pytest.mark.parametrize(
    ("status", "body", "error_type", "field"),
    [
        (
            400,
            {
                "errors": [
                    {"message": "Does not contain a valid address.", "field": "personalizations.0.to.0.email"}
                ]
            },
            errors.InvalidRequest,
            "personalizations.0.to.0.email",
        ),
        (413, {"errors": [{"message": "too large", "field": None}]}, errors.InvalidRequest, "content"),
        (
            401,
            {
                "errors": [
                    {
                        "field": None,
                        "message": "The provided authorization grant is invalid, expired, or revoked",
                    }
                ]
            },
            errors.AuthenticationFailed,
            None,
        ),
        (
            403,
            {"errors": [{"field": None, "message": "access forbidden"}]},
            errors.AuthenticationFailed,
            None,
        ),
    ],
)
def test_sendgrid_errors_are_typed_and_sent_once(clock, status, body, error_type, field):
    transport = Scripted([], last=httpx.Response(status, json=body))
    with pytest.raises(error_type) as raised:
        factory(transport, clock).email_channel("sendgrid").send(EMAIL)
    assert len(transport.requests) == 1
    assert getattr(raised.value, "field", None) == field


def test_sendgrid_success_is_202_with_x_message_id_and_the_send_key_in_custom_args(clock):
    transport = Scripted([httpx.Response(202, headers={"X-Message-Id": "sg-msg-1"})])
    receipt = factory(transport, clock).email_channel("sendgrid").send(EMAIL)
    assert (receipt.provider, receipt.provider_message_id, receipt.attempts) == ("sendgrid", "sg-msg-1", 1)
    body = json.loads(transport.requests[0].read())
    assert body["personalizations"][0]["custom_args"]["tidings_send_key"] == "email-42"
    assert body["from"]["email"] == "receipts@shop.example"


def test_sendgrid_429_waits_until_its_reset_header(clock, monkeypatch):
    reset = int(clock.now) + 3
    transport = Scripted(
        [
            httpx.Response(
                429,
                json={"errors": [{"message": "too many requests"}]},
                headers={"X-RateLimit-Reset": str(reset)},
            ),
            httpx.Response(202, headers={"X-Message-Id": "sg-2"}),
        ]
    )
    # the reset header is an epoch second: read it on the fake clock
    monkeypatch.setattr(provider_errors, "time", SimpleNamespace(time=clock))
    receipt = factory(transport, clock).email_channel("sendgrid").send(EMAIL)
    assert receipt.attempts == 2
    assert clock.slept == [3.0]


@pytest.mark.parametrize(
    ("status", "code", "error_type", "field"),
    [
        (400, 21211, errors.InvalidRequest, "To"),
        (400, 21610, errors.InvalidRequest, "To"),
        (400, 21606, errors.InvalidRequest, "From"),
        (401, 20003, errors.AuthenticationFailed, None),
        (404, 20404, errors.ResourceNotFound, None),
    ],
)
def test_twilio_errors_are_typed_and_sent_once(clock, status, code, error_type, field):
    body = {
        "code": code,
        "message": "The 'To' number +447700900123 is not a valid phone number.",
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    transport = Scripted([], last=httpx.Response(status, json=body, headers={"Twilio-Request-Id": "RQ1"}))
    with pytest.raises(error_type) as raised:
        factory(transport, clock).sms_channel("twilio").send(SMS)
    assert len(transport.requests) == 1
    assert raised.value.code == str(code)
    assert raised.value.request_id == "RQ1"
    assert getattr(raised.value, "field", None) == field
    # the provider's message is kept for operators, with the phone number masked
    assert "+447700900123" not in raised.value.message


def test_twilio_message_is_form_encoded_with_basic_auth_and_a_correlating_callback(clock):
    transport = Scripted([httpx.Response(201, json={"sid": "SM123", "status": "queued"})])
    receipt = factory(transport, clock).sms_channel("twilio").send(SMS)
    request = transport.requests[0]
    form = dict(httpx.QueryParams(request.content.decode()))
    assert receipt.provider_message_id == "SM123"
    assert request.url.path == "/2010-04-01/Accounts/AC11111111111111111111111111111111/Messages.json"
    assert request.headers["Authorization"].startswith("Basic ")
    assert form["From"] == "+15005550006"
    assert form["StatusCallback"] == "https://h/cb?x=1&tidings_send_key=sms-42"


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset by peer"),
    ],
)
def test_two_broken_connections_then_success_is_three_requests(clock, failure):
    transport = Scripted([failure, failure, httpx.Response(201, json={"sid": "SM9", "status": "queued"})])
    receipt = factory(transport, clock).sms_channel("twilio").send(SMS)
    assert len(transport.requests) == 3
    assert receipt.attempts == 3
    assert len(clock.slept) == 2


def test_timeouts_surface_as_provider_timeout_after_three_attempts(clock):
    transport = Scripted([], last=httpx.ReadTimeout("timed out"))
    with pytest.raises(errors.ProviderTimeout):
        factory(transport, clock).payment_gateway().retrieve("pi_1")
    assert len(transport.requests) == 3


def test_5xx_three_times_surfaces_provider_unavailable(clock):
    transport = Scripted([], last=httpx.Response(503, json=stripe_body(type="api_error")))
    with pytest.raises(errors.ProviderUnavailable) as raised:
        factory(transport, clock).payment_gateway().retrieve("pi_1")
    assert len(transport.requests) == 3
    assert raised.value.status == 503
