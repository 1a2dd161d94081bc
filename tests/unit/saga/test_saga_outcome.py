"""The one final status per execution, decided from the state the state machine carried to RecordOutcome."""

import pytest

from tidings.notifications.models import ChannelStatus, NotificationStatus
from tidings.saga.outcome import OutcomeInput, decide, upgraded_status

pytestmark = pytest.mark.unit

BEST_EFFORT = {"email": "best_effort", "sms": "best_effort"}
EMAIL_REQUIRED = {"email": "required", "sms": "best_effort"}
SMS_REQUIRED = {"email": "best_effort", "sms": "required"}
SENT = {"provider": "x", "provider_message_id": "m", "deduplicated": False}


def state(policy=BEST_EFFORT, **steps):
    return OutcomeInput.model_validate({"notification_id": "n-1", "delivery_policy": policy, **steps})


def error(name):
    return {"Error": name, "Cause": "{}"}


CHARGED = {"ChargePaymentResult": {"status": "succeeded", "payment_intent_id": "pi_1"}}


@pytest.mark.parametrize(
    ("execution_state", "status", "email", "sms"),
    [
        pytest.param(
            state(**CHARGED, SendReceiptEmailResult=SENT, SendSmsResult=SENT),
            NotificationStatus.DELIVERED,
            ChannelStatus.SENT,
            ChannelStatus.SENT,
            id="all-delivered",
        ),
        pytest.param(
            state(
                **CHARGED,
                SendReceiptEmailError=error("ProviderUnavailable"),
                SendReceiptEmailViaSesResult=SENT,
                SendSmsResult=SENT,
            ),
            NotificationStatus.DELIVERED_WITH_FALLBACK,
            ChannelStatus.SENT,
            ChannelStatus.SENT,
            id="sendgrid-down-ses",
        ),
        pytest.param(
            state(
                **CHARGED,
                SendReceiptEmailResult=SENT,
                SendSmsError=error("CircuitOpen"),
                SendSmsViaSnsResult=SENT,
            ),
            NotificationStatus.DELIVERED_WITH_FALLBACK,
            ChannelStatus.SENT,
            ChannelStatus.SENT,
            id="twilio-down-sns",
        ),
        pytest.param(
            state(
                **CHARGED,
                SendReceiptEmailError=error("ProviderUnavailable"),
                SendReceiptEmailViaSesError=error("NetworkError"),
                ParkEmailResult={"message_id": "m-1"},
                SendSmsResult=SENT,
            ),
            NotificationStatus.PARTIALLY_DELIVERED,
            ChannelStatus.DEAD_LETTERED,
            ChannelStatus.SENT,
            id="email-down-best-effort",
        ),
        pytest.param(
            state(
                **CHARGED,
                SendReceiptEmailResult=SENT,
                SendSmsError=error("ProviderUnavailable"),
                SendSmsViaSnsError=error("ProviderUnavailable"),
                ParkSmsResult={"message_id": "m-2"},
            ),
            NotificationStatus.PARTIALLY_DELIVERED,
            ChannelStatus.SENT,
            ChannelStatus.PARKED,
            id="sms-parked",
        ),
        pytest.param(
            state(**CHARGED, SendReceiptEmailResult=SENT, SendSmsError=error("InvalidRequest")),
            NotificationStatus.PARTIALLY_DELIVERED,
            ChannelStatus.SENT,
            ChannelStatus.REJECTED,
            id="sms-rejected-best-effort",
        ),
        pytest.param(
            state(ChargePaymentError=error("PaymentDeclined")),
            NotificationStatus.PAYMENT_DECLINED,
            ChannelStatus.SKIPPED,
            ChannelStatus.SKIPPED,
            id="declined",
        ),
        pytest.param(
            state(
                ChargePaymentResult={"status": "requires_action", "payment_intent_id": "pi_1"},
                WaitForPaymentActionError=error("States.Timeout"),
                CancelPaymentResult={"outcome": "cancelled"},
            ),
            NotificationStatus.PAYMENT_DECLINED,
            ChannelStatus.SKIPPED,
            ChannelStatus.SKIPPED,
            id="3ds-timeout",
        ),
        pytest.param(
            state(
                ChargePaymentResult={"status": "requires_action", "payment_intent_id": "pi_1"},
                WaitForPaymentActionError=error("PaymentDeclined"),
            ),
            NotificationStatus.PAYMENT_DECLINED,
            ChannelStatus.SKIPPED,
            ChannelStatus.SKIPPED,
            id="3ds-failed",
        ),
        pytest.param(
            state(
                EMAIL_REQUIRED,
                **CHARGED,
                SendReceiptEmailError=error("ProviderUnavailable"),
                SendReceiptEmailViaSesError=error("ProviderUnavailable"),
                RefundPaymentResult={"refund_id": "re_1", "status": "succeeded"},
            ),
            NotificationStatus.COMPENSATED,
            ChannelStatus.FAILED,
            ChannelStatus.SKIPPED,
            id="email-required-refunded",
        ),
        pytest.param(
            state(
                EMAIL_REQUIRED,
                **CHARGED,
                SendReceiptEmailError=error("ProviderUnavailable"),
                SendReceiptEmailViaSesError=error("ProviderUnavailable"),
                RefundPaymentError=error("ProviderUnavailable"),
                ParkRefundResult={"message_id": "m-3"},
            ),
            NotificationStatus.FAILED,
            ChannelStatus.FAILED,
            ChannelStatus.SKIPPED,
            id="refund-failed",
        ),
        pytest.param(
            state(ChargePaymentError=error("ProviderTimeout"), ParkChargeResult={"message_id": "m-4"}),
            NotificationStatus.FAILED,
            ChannelStatus.SKIPPED,
            ChannelStatus.SKIPPED,
            id="charge-uncertain",
        ),
        pytest.param(
            state(ChargePaymentError=error("InvalidRequest")),
            NotificationStatus.FAILED,
            ChannelStatus.SKIPPED,
            ChannelStatus.SKIPPED,
            id="charge-refused",
        ),
        pytest.param(
            state(
                SMS_REQUIRED,
                **CHARGED,
                SendReceiptEmailResult=SENT,
                SendSmsError=error("ProviderUnavailable"),
                SendSmsViaSnsError=error("ProviderUnavailable"),
                SmsOutageResult={"provider": "twilio"},
            ),
            NotificationStatus.DELIVERED_WITH_FALLBACK,
            ChannelStatus.SENT,
            ChannelStatus.SENT,
            id="required-sms-sent-from-outage-queue",
        ),
        pytest.param(
            state(
                SMS_REQUIRED,
                **CHARGED,
                SendReceiptEmailResult=SENT,
                SendSmsError=error("ProviderUnavailable"),
                SendSmsViaSnsError=error("ProviderUnavailable"),
                SmsOutageError=error("ProviderUnavailable"),
                RefundPaymentResult={"refund_id": "re_1", "status": "succeeded"},
            ),
            NotificationStatus.COMPENSATED,
            ChannelStatus.SENT,
            ChannelStatus.FAILED,
            id="required-sms-given-up",
        ),
    ],
)
def test_each_path_ends_in_exactly_its_status(execution_state, status, email, sms):
    outcome = decide(execution_state)
    assert outcome.status == status
    assert outcome.channels["email"].status == email
    assert outcome.channels["sms"].status == sms


def test_the_outage_queue_winning_the_race_counts_the_parked_sms_as_sent():
    # Given the SMS was parked, but the outage queue's consumer sent it before RecordOutcome ran
    execution_state = state(
        **CHARGED,
        SendReceiptEmailResult=SENT,
        SendSmsError=error("ProviderUnavailable"),
        SendSmsViaSnsError=error("ProviderUnavailable"),
        ParkSmsResult={"message_id": "m"},
    )
    # When the outcome is decided with the table's current channel statuses
    outcome = decide(execution_state, {"email": ChannelStatus.SENT, "sms": ChannelStatus.SENT})
    # Then it is delivered (by a fallback path), not partially delivered
    assert outcome.status == NotificationStatus.DELIVERED_WITH_FALLBACK


def test_compensation_names_the_required_channel_that_failed():
    execution_state = state(
        SMS_REQUIRED,
        **CHARGED,
        SendReceiptEmailResult=SENT,
        SendSmsError=error("InvalidRequest"),
        RefundPaymentResult={"refund_id": "re_1", "status": "succeeded"},
    )
    outcome = decide(execution_state)
    assert outcome.reason == "required_sms_failed"
    # A permanent refusal keeps its own reason rather than a generic failure
    assert outcome.channels["sms"].status == ChannelStatus.REJECTED


@pytest.mark.parametrize(
    ("current", "channels", "expected"),
    [
        ("partially_delivered", {"email": "sent", "sms": "sent"}, "delivered_with_fallback"),
        ("partially_delivered", {"email": "dead_lettered", "sms": "sent"}, None),
        ("compensated", {"email": "sent", "sms": "sent"}, None),
    ],
)
def test_a_late_delivery_upgrades_only_a_partially_delivered_notification(current, channels, expected):
    statuses = {name: ChannelStatus(status) for name, status in channels.items()}
    assert upgraded_status(NotificationStatus(current), statuses) == expected
