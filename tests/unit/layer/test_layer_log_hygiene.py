"""Every log line and metric of a full provider round trip is free of secrets and personal data.

(The autouse ``no_personal_data_in_logs`` fixture applies the same check to every test here; this one
drives the noisiest paths on purpose - failures with echoed input, retries, a credential refresh - and
also checks that the lines were really captured, so the guard cannot pass by capturing nothing.)
"""

import json

import httpx
import pytest
from support.provider_fakes import (
    CUSTOMER_NAME,
    PERSONAL_VALUES,
    RECEIPT_TEXT,
    SECRET_VALUES,
    SMS_BODY,
    Scripted,
    StaticCredentials,
    factory,
)

from tidings import errors
from tidings.providers.models import ChargeRequest, EmailMessage, SmsMessage
from tidings.secrets import StripeCredentials

pytestmark = pytest.mark.unit


def test_a_noisy_round_trip_logs_no_secret_card_email_or_phone(clock, log_lines, capsys):
    # Given providers that echo personal data back in their errors
    def stripe(request):
        if request.headers["Authorization"].endswith("key_1"):
            return httpx.Response(
                401, json={"error": {"message": "Invalid API Key provided: sk_test_unit_secret_key_1"}}
            )
        return httpx.Response(
            402,
            json={
                "error": {
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": "stolen_card",
                    "message": "Card 4242424242424242 for jane.doe@example.com was declined",
                }
            },
        )

    rotated = StaticCredentials(rotated={"stripe": StripeCredentials(api_key="sk_test_unit_secret_key_2")})
    charge = ChargeRequest(
        amount=100,
        currency="usd",
        payment_method="pm_card_visa",
        description="for jane.doe@example.com",
        metadata={"phone": "+447700900123"},
        idempotency_key="k",
        receipt_email="jane.doe@example.com",
    )
    with pytest.raises(errors.PaymentDeclined) as declined:
        factory(Scripted([], last=stripe), clock, credentials=rotated).payment_gateway().charge(charge)

    twilio = Scripted(
        [
            httpx.ReadError("reset"),
            httpx.Response(
                400, json={"code": 21211, "message": "The 'To' number +447700900123 is not valid"}
            ),
        ]
    )
    with pytest.raises(errors.InvalidRequest):
        factory(twilio, clock).sms_channel("twilio").send(
            SmsMessage(to="+447700900123", body="Card 4242424242424242", idempotency_key="s")
        )
    sendgrid = Scripted([httpx.Response(400, json={"errors": [{"message": "jane.doe@example.com bounced"}]})])
    with pytest.raises(errors.InvalidRequest):
        factory(sendgrid, clock).email_channel("sendgrid").send(
            EmailMessage(to="jane.doe@example.com", to_name=None, subject="s", text="t", idempotency_key="e")
        )

    # Then the lines exist, carry the masked forms, and nothing sensitive
    everything = "\n".join(log_lines.lines) + capsys.readouterr().out
    assert "provider request failed" in everything
    assert "j***@example.com" in everything
    assert "+44********23" in everything
    assert "stolen_card" in everything
    for value in SECRET_VALUES + PERSONAL_VALUES:
        assert value not in everything
    assert "4242424242424242" not in str(declined.value)


def test_a_successful_send_is_logged_by_its_shape_never_its_content(clock, log_lines, capsys):
    # Given a receipt and a text message that go through without a hitch
    sendgrid = Scripted([httpx.Response(202, headers={"X-Message-Id": "sg-1"})])
    factory(sendgrid, clock).email_channel("sendgrid").send(
        EmailMessage(
            to="jane.doe@example.com",
            to_name=CUSTOMER_NAME,
            subject="Your receipt",
            text=RECEIPT_TEXT,
            idempotency_key="e",
        )
    )
    twilio = Scripted([httpx.Response(201, json={"sid": "SM1", "status": "queued"})])
    factory(twilio, clock).sms_channel("twilio").send(
        SmsMessage(to="+447700900123", body=SMS_BODY, idempotency_key="s")
    )
    # Then each request's line says what was sent (method, path, status, field names, sizes)...
    everything = "\n".join(log_lines.lines) + capsys.readouterr().out
    lines = [json.loads(line) for line in log_lines.lines if "provider request succeeded" in line]
    assert [(line["provider"], line["status"]) for line in lines] == [("sendgrid", 202), ("twilio", 201)]
    sendgrid_line, twilio_line = lines
    assert sendgrid_line["method"] == "POST"
    assert "personalizations" in sendgrid_line["request_fields"]
    assert sendgrid_line["request_bytes"] > len(RECEIPT_TEXT)
    assert "Body" in twilio_line["request_fields"]
    # ...and never what it said: no name, receipt text or SMS body
    for value in (CUSTOMER_NAME, RECEIPT_TEXT, SMS_BODY):
        assert value not in everything
