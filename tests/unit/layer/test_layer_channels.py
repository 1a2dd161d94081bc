"""SES and SNS behind the e-mail/SMS channel interfaces (moto), and duplicate-send suppression."""

import httpx
import pytest
from support.provider_fakes import Scripted, factory

from tidings import errors
from tidings.providers.models import EmailMessage, SmsMessage

# Outside Lambda there is no context to register; the warning is expected here.
pytestmark = [
    pytest.mark.unit,
    pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left"),
]

DEDUP_ENV = {"IDEMPOTENCY_TABLE": "idem-table"}


def email(key="receipt-1", to="jane.doe@example.com"):
    return EmailMessage(to=to, to_name=None, subject="Your receipt", text="Thanks", idempotency_key=key)


def sms(key="sms-1", to="+447700900123"):
    return SmsMessage(to=to, body="Paid", idempotency_key=key)


def test_ses_and_sendgrid_are_interchangeable_email_channels(aws, clock):
    aws["ses"].verify_email_identity(EmailAddress="receipts@shop.example")
    provider_factory = factory(Scripted([httpx.Response(202, headers={"X-Message-Id": "sg-1"})]), clock)
    receipts = [provider_factory.email_channel(name).send(email()) for name in ("sendgrid", "ses")]
    assert [r.provider for r in receipts] == ["sendgrid", "ses"]
    assert all(r.provider_message_id for r in receipts)
    sent = aws["ses"].get_send_statistics()["SendDataPoints"]
    assert sum(point["DeliveryAttempts"] for point in sent) == 1


def test_ses_refusal_is_a_typed_invalid_request_without_the_address(aws, clock):
    # Given a sender SES has not verified
    channel = factory(Scripted([]), clock).email_channel("ses")
    with pytest.raises(errors.InvalidRequest) as raised:
        channel.send(email())
    assert raised.value.code == "MessageRejected"
    assert "receipts@shop.example" not in raised.value.message


def test_sns_is_an_sms_channel_like_twilio(aws, clock):
    receipt = factory(Scripted([]), clock).sms_channel("sns").send(sms())
    assert receipt.provider == "sns"
    assert receipt.provider_message_id


def test_the_same_send_key_is_delivered_once(aws, clock):
    # Given SendGrid accepts a message
    transport = Scripted([], last=httpx.Response(202, headers={"X-Message-Id": "sg-1"}))
    channel = factory(transport, clock, env=DEDUP_ENV, aws=aws).email_channel("sendgrid")
    first = channel.send(email())
    # When the saga retries the same step
    again = channel.send(email())
    # Then SendGrid saw one request and the second answer says it was a duplicate
    assert len(transport.requests) == 1
    assert (first.deduplicated, again.deduplicated) == (False, True)
    assert again.provider_message_id == "sg-1"


def test_the_fallback_channel_does_not_resend_what_the_primary_sent(aws, clock):
    aws["ses"].verify_email_identity(EmailAddress="receipts@shop.example")
    transport = Scripted([], last=httpx.Response(202, headers={"X-Message-Id": "sg-1"}))
    provider_factory = factory(transport, clock, env=DEDUP_ENV, aws=aws)
    provider_factory.email_channel("sendgrid").send(email())
    fallback = provider_factory.email_channel("ses").send(email())
    assert fallback.deduplicated is True
    assert fallback.provider == "sendgrid"
    assert sum(p["DeliveryAttempts"] for p in aws["ses"].get_send_statistics()["SendDataPoints"]) == 0


def test_a_failed_send_leaves_no_record_so_a_retry_may_send(aws, clock):
    transport = Scripted(
        [httpx.Response(400, json={"errors": [{"message": "bad", "field": "subject"}]})],
        last=httpx.Response(202, headers={"X-Message-Id": "sg-2"}),
    )
    channel = factory(transport, clock, env=DEDUP_ENV, aws=aws).email_channel("sendgrid")
    with pytest.raises(errors.InvalidRequest):
        channel.send(email())
    assert channel.send(email()).deduplicated is False
    assert len(transport.requests) == 2


def test_a_send_key_reused_for_another_recipient_is_a_conflict(aws, clock):
    transport = Scripted([], last=httpx.Response(201, json={"sid": "SM1", "status": "queued"}))
    channel = factory(transport, clock, env=DEDUP_ENV, aws=aws).sms_channel("twilio")
    channel.send(sms())
    with pytest.raises(errors.IdempotencyConflict) as raised:
        channel.send(sms(to="+447700900999"))
    assert raised.value.code == "send_key_reused"
    assert len(transport.requests) == 1


def test_email_and_sms_keys_do_not_collide(aws, clock):
    transport = Scripted(
        [httpx.Response(202, headers={"X-Message-Id": "sg-1"}), httpx.Response(201, json={"sid": "SM1"})]
    )
    provider_factory = factory(transport, clock, env=DEDUP_ENV, aws=aws)
    provider_factory.email_channel("sendgrid").send(email(key="same"))
    assert provider_factory.sms_channel("twilio").send(sms(key="same")).deduplicated is False


@pytest.mark.parametrize(
    ("channel_of", "setting"),
    [
        (lambda provider_factory: provider_factory.sms_channel("sns"), "SNS_RATE_PER_SECOND"),
        (lambda provider_factory: provider_factory.email_channel("ses"), "SES_RATE_PER_SECOND"),
    ],
    ids=["sns", "ses"],
)
def test_the_aws_fallbacks_keep_to_their_own_account_rate(aws, clock, channel_of, setting):
    # Given SES / SNS limited to 2 requests per second (burst 2), their bucket shared through DynamoDB
    # (SES's from the setting: its GetSendQuota reading is off here, test_layer_rate_limit_headroom.py has it)
    aws["ses"].verify_email_identity(EmailAddress="receipts@shop.example")
    env = {setting: "2", "RATE_LIMIT_TABLE": "rate-table", "TIDINGS_SES_QUOTA_TTL_SECONDS": "0"}
    channel = channel_of(factory(Scripted([]), clock, env=env, aws=aws))
    message = email if setting.startswith("SES") else sms
    start = clock.now
    # When six messages go out at once
    admitted_at = []
    for index in range(6):
        channel.send(message(key=f"burst-{index}"))
        admitted_at.append(clock.now - start)
    # Then the first two pass at once and the rest wait their turn: one every half second
    assert admitted_at == pytest.approx([0, 0, 0.5, 1.0, 1.5, 2.0], abs=1e-3)
