"""The acceptance behaviours of the provider layer, over real HTTP against the sandboxes.

Each test counts the requests the sandbox received. Waits run on a fake clock (nothing sleeps for
real); breaker state and token buckets live in moto's DynamoDB, credentials in moto's Secrets Manager.
"""

import json

import httpx
import pytest

from tidings import errors
from tidings.providers.models import ChargeRequest, EmailMessage, SmsMessage

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left"),
]


def charge(payment_method="pm_card_visa", key="order-1", amount=2500):
    return ChargeRequest(
        amount=amount,
        currency="gbp",
        payment_method=payment_method,
        description="Order 1",
        metadata={"order_id": "1"},
        idempotency_key=key,
        receipt_email="jane.doe@example.com",
    )


def email(key="receipt-1"):
    return EmailMessage(
        to="jane.doe@example.com", to_name="Jane", subject="Your receipt", text="Thanks", idempotency_key=key
    )


def sms(key="sms-1", to="+447700900123"):
    return SmsMessage(to=to, body="Paid, thanks", idempotency_key=key)


def test_429_with_retry_after_2_is_waited_out_then_succeeds(container, sandbox, clock):
    # Given Stripe answers the next request with 429 and Retry-After: 2
    stripe = sandbox["stripe"].control
    stripe.inject_fault("status", status=429, retry_after=2, count=1, path_prefix="/v1/payment_intents")
    # When a card is charged
    result = container().payment_gateway().charge(charge())
    # Then the 2 s were waited (on the fake clock) and the second request succeeded
    assert result.status == "succeeded"
    assert clock.slept == [2.0]
    requests = stripe.requests("/v1/payment_intents")
    assert [r["status"] for r in requests] == [429, 200]
    # with the same Idempotency-Key both times, so Stripe can never charge twice
    keys = {r["headers"].get("idempotency-key") or r["headers"].get("Idempotency-Key") for r in requests}
    assert keys == {"order-1"}


def test_two_connection_resets_then_success_is_exactly_three_requests(container, sandbox, clock):
    twilio = sandbox["twilio"].control
    twilio.inject_fault("reset", count=2)
    receipt = container().sms_channel("twilio").send(sms())
    assert receipt.attempts == 3
    assert len(twilio.requests("/2010-04-01")) == 3
    assert len(clock.slept) == 2


def test_a_declined_card_is_one_request_and_payment_declined_with_its_code(container, sandbox):
    stripe = sandbox["stripe"].control
    with pytest.raises(errors.PaymentDeclined) as raised:
        container().payment_gateway().charge(charge("pm_card_chargeDeclinedInsufficientFunds"))
    assert raised.value.decline_code == "insufficient_funds"
    assert raised.value.status == 402
    assert raised.value.request_id
    assert len(stripe.requests("/v1/payment_intents")) == 1


def _send_something_invalid(provider, factory, control):
    if provider == "stripe":
        return factory.payment_gateway().charge(charge(amount=10, key="tiny"))  # below Stripe's minimum
    if provider == "sendgrid":
        control.inject_fault("status", status=400, count=1)
        return factory.email_channel("sendgrid").send(email())
    return factory.sms_channel("twilio").send(sms(to="+15005550001"))  # Twilio's invalid-number test number


@pytest.mark.parametrize("provider", ["stripe", "sendgrid", "twilio"])
def test_a_400_is_never_retried(container, sandbox, provider):
    control = sandbox[provider].control
    with pytest.raises(errors.InvalidRequest) as raised:
        _send_something_invalid(provider, container(), control)
    assert raised.value.status == 400
    assert len([r for r in control.requests() if not r["path"].startswith("/_sandbox")]) == 1


def test_repeated_5xx_open_the_breaker_for_other_containers_until_a_probe_closes_it(
    container, sandbox, clock
):
    # Given Stripe is down and the breaker opens at half of 3 calls or more failing transiently
    stripe = sandbox["stripe"].control
    stripe.inject_fault("outage")
    settings = {
        "TIDINGS_BREAKER_MINIMUM_CALLS": "3",
        "TIDINGS_BREAKER_ERROR_THRESHOLD_PERCENT": "50",
        "TIDINGS_BREAKER_RECOVERY_SECONDS": "30",
    }
    first, second = container(**settings), container(**settings)
    # When the first container's call retries through three 503s
    with pytest.raises(errors.ProviderUnavailable) as raised:
        first.payment_gateway().retrieve("pi_unknown")
    assert type(raised.value) is errors.ProviderUnavailable
    assert len(stripe.requests("/v1/")) == 3
    # Then another container fails fast without touching the sandbox
    stripe.clear_requests()
    with pytest.raises(errors.CircuitOpen):
        second.payment_gateway().charge(charge())
    assert stripe.requests("/v1/") == []
    # When Stripe is back and the recovery time has passed, one probe closes the breaker
    stripe.clear_faults()
    clock.advance(31)
    assert second.payment_gateway().charge(charge()).status == "succeeded"
    assert first.payment_gateway().charge(charge(key="order-2")).status == "succeeded"
    assert len(stripe.requests("/v1/")) == 2


def test_the_token_bucket_holds_a_burst_to_the_configured_rate(container, sandbox, clock):
    # Given Twilio limited to 5 requests per second with a burst of 5, shared by two containers
    twilio = sandbox["twilio"].control
    limits = {"TWILIO_RATE_PER_SECOND": "5", "TIDINGS_RATE_LIMIT_BURST_SECONDS": "1"}
    channels = [container(**limits).sms_channel("twilio"), container(**limits).sms_channel("twilio")]
    start = clock.now
    # When 20 messages are sent at once, alternating containers
    admitted_at = []
    for index in range(20):
        channels[index % 2].send(sms(key=f"burst-{index}"))
        admitted_at.append(clock.now - start)
    # Then all were sent, but never faster than capacity + rate * t (fake epoch time: float slack 1e-4)
    assert len(twilio.requests("/2010-04-01")) == 20
    for i, began in enumerate(admitted_at):
        for j in range(i, len(admitted_at)):
            assert j - i + 1 <= 5 + 5 * (admitted_at[j] - began) + 1e-4
    assert admitted_at[-1] == pytest.approx((20 - 5) / 5)


def test_an_expired_credential_is_refreshed_from_secrets_manager_once(container, sandbox, aws):
    # Given a container that has cached the current key
    stripe = sandbox["stripe"].control
    gateway = container().payment_gateway()
    assert gateway.charge(charge(key="before")).status == "succeeded"
    # When the key is rotated: Secrets Manager holds the new one, Stripe refuses the old one
    aws["secretsmanager"].put_secret_value(
        SecretId=aws["arns"]["stripe"],
        SecretString=json.dumps({"api_key": "sk_test_rotated_integration_key"}),
    )
    stripe.set_credentials(api_key="sk_test_rotated_integration_key")
    stripe.clear_requests()
    # Then the next call is refused once, refreshes the secret, and succeeds
    assert gateway.charge(charge(key="after")).status == "succeeded"
    assert [r["status"] for r in stripe.requests("/v1/payment_intents")] == [401, 200]


def test_a_hanging_provider_times_out_on_every_attempt(container, sandbox):
    # Given SendGrid accepts connections but never answers
    sendgrid = sandbox["sendgrid"].control
    sendgrid.inject_fault("hang", delay=30)
    channel = container(TIDINGS_HTTP_TIMEOUT_SECONDS="0.2", TIDINGS_HTTP_CONNECT_TIMEOUT_SECONDS="0.2")
    try:
        with pytest.raises(errors.ProviderTimeout):
            channel.email_channel("sendgrid").send(email())
    finally:
        sendgrid.clear_faults()
    assert len(sendgrid.requests("/v3/mail/send")) == 3


def test_a_repeated_send_reaches_the_provider_once(container, sandbox):
    sendgrid = sandbox["sendgrid"].control
    first, again = (container().email_channel("sendgrid").send(email()) for _ in range(2))
    assert (first.deduplicated, again.deduplicated) == (False, True)
    assert first.provider_message_id == again.provider_message_id
    sent = sendgrid.requests("/v3/mail/send")
    assert len(sent) == 1
    body = sent[0]["json"] or json.loads(sent[0]["body"])
    assert body["personalizations"][0]["custom_args"]["tidings_send_key"] == "receipt-1"


def test_requires_action_is_a_result_with_the_3ds_url_not_an_error(container, sandbox):
    gateway = container(STRIPE_RETURN_URL="https://shop.example/paid").payment_gateway()
    result = gateway.charge(charge("pm_card_threeDSecureRequired", key="3ds"))
    assert result.status == "requires_action"
    assert httpx.URL(result.next_action_url).scheme in ("http", "https")
    # once the customer completes the challenge, retrieve sees the payment succeed
    sandbox["stripe"].control.complete_action(result.payment_intent_id)
    assert gateway.retrieve(result.payment_intent_id).status == "succeeded"


def test_refund_after_charge_is_idempotent(container, sandbox):
    gateway = container().payment_gateway()
    paid = gateway.charge(charge(key="refund-me"))
    refunds = [gateway.refund(paid.payment_intent_id, idempotency_key="refund-1") for _ in range(2)]
    assert refunds[0].refund_id == refunds[1].refund_id
    assert refunds[0].amount == 2500


def test_a_rotated_twilio_api_key_secret_is_picked_up_once(container, sandbox, aws):
    from tidings_local.sandboxes import credentials as local

    twilio = sandbox["twilio"].control
    channel = container().sms_channel("twilio")
    channel.send(sms(key="before-rotation"))
    rotated = "twilio-rotated-integration-secret"
    aws["secretsmanager"].put_secret_value(
        SecretId=aws["arns"]["twilio"],
        SecretString=json.dumps(
            {
                "account_sid": local.TWILIO_ACCOUNT_SID,
                "api_key_sid": local.TWILIO_API_KEY_SID,
                "api_key_secret": rotated,
                "from_number": local.TWILIO_FROM_NUMBER,
            }
        ),
    )
    twilio.set_credentials(api_key_secret=rotated)
    twilio.clear_requests()
    assert channel.send(sms(key="after-rotation")).deduplicated is False
    assert [r["status"] for r in twilio.requests("/2010-04-01")] == [401, 201]


def test_the_configured_time_scale_shortens_a_real_retry_after_wait(container, sandbox, clock):
    # Given real sleeping, scaled by TIDINGS_RETRY_TIME_SCALE=0.001, and a recorder around it
    import time

    from tidings.resilience.timing import Timing

    slept = []

    def sleep(seconds):
        slept.append(seconds)
        time.sleep(seconds)

    stripe = sandbox["stripe"].control
    stripe.inject_fault("status", status=429, retry_after=2, count=1, path_prefix="/v1/payment_intents")
    factory = container(TIDINGS_RETRY_TIME_SCALE="0.001")
    factory.timing = Timing(sleep=sleep, scale=factory.settings.retry_time_scale)
    # When the 429 is waited out
    assert factory.payment_gateway().charge(charge(key="scaled")).status == "succeeded"
    # Then Retry-After: 2 cost 2 ms of real sleep
    assert slept == [pytest.approx(0.002)]
    assert len(stripe.requests("/v1/payment_intents")) == 2


def test_a_payment_intent_is_found_by_its_metadata_across_pages_and_an_unknown_one_is_none(
    container, sandbox
):
    import time

    gateway = container().payment_gateway()
    since = int(time.time()) - 1
    # Given more intents in the window than one page of the list holds, the one we look for the oldest
    wanted = gateway.charge(charge(key="wanted").model_copy(update={"metadata": {"notification_id": "n-1"}}))
    for number in range(101):
        gateway.charge(
            charge(key=f"other-{number}").model_copy(update={"metadata": {"notification_id": f"x{number}"}})
        )
    stripe = sandbox["stripe"].control
    creates = len(stripe.requests("/v1/payment_intents"))
    # When it is looked up by the notification id it carried
    found = gateway.find_by_metadata("notification_id", "n-1", created_from=since)
    # Then the second page finds it, by listing only: nothing is created to find out
    assert found is not None
    assert (found.payment_intent_id, found.status) == (wanted.payment_intent_id, "succeeded")
    lists = [r for r in stripe.requests("/v1/payment_intents") if r["method"] == "GET"]
    assert len(lists) == 2
    assert gateway.find_by_metadata("notification_id", "n-404", created_from=since) is None
    assert gateway.find_by_metadata("notification_id", "n-1", created_from=int(time.time()) + 60) is None
    assert len([r for r in stripe.requests("/v1/payment_intents") if r["method"] == "POST"]) == creates
