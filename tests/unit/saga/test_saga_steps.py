"""The saga's steps against the notification table (moto) and fakes of the provider interfaces."""

import pytest
from support.saga import invalid, notification_request, unavailable

from tidings import errors
from tidings.notifications.models import Notification
from tidings.saga import keys
from tidings.saga.callbacks import TaskTokenResumer
from tidings.saga.outcome import OutcomeInput
from tidings.saga.redelivery import ParkedMessage, Redelivery, RedeliveryPolicy, RetryLater

pytestmark = pytest.mark.unit

NID = "11111111-2222-3333-4444-555555555555"


@pytest.fixture
def notification(store):
    store.create(Notification.accepted(NID, "client-a", notification_request(), at=store.now()))
    return NID


def steps_of(store, notification_id):
    return [(event.step, event.outcome) for event in store.timeline(notification_id)]


def test_charge_uses_the_notification_ids_idempotency_key_and_links_the_payment_intent(
    steps, store, gateway, notification
):
    # When the charge runs twice (a Lambda retry)
    first = steps.charge_payment(notification, attempt=0)
    steps.charge_payment(notification, attempt=1)
    # Then both calls carry the same Stripe Idempotency-Key, so Stripe charges once
    assert {charge.idempotency_key for charge in gateway.charges} == {keys.charge_key(notification)}
    assert gateway.charges[0].metadata["notification_id"] == notification
    # And the webhook can find the notification from its PaymentIntent
    assert store.notification_for_payment_intent(first.payment_intent_id) == notification
    assert first.status == "succeeded"


def test_a_declined_charge_is_recorded_and_its_type_escapes_for_the_state_machine(
    steps, store, gateway, notification
):
    gateway.charge_outcomes = [
        errors.PaymentDeclined("declined", provider="stripe", status=402, decline_code="insufficient_funds")
    ]
    with pytest.raises(errors.PaymentDeclined):
        steps.charge_payment(notification)
    event = store.timeline(notification)[-1]
    assert (event.step, event.outcome, event.attempt) == ("ChargePayment", "failed", 1)
    assert event.details["decline_code"] == "insufficient_funds"
    assert store.get(notification).payment.status == "declined"


def test_3ds_wait_keeps_the_task_token_and_cancel_clears_it(steps, store, gateway, notification):
    result = steps.charge_payment(notification)
    gateway.charge_outcomes = ["requires_action"]
    result = steps.charge_payment(notification)
    steps.await_payment_action(notification, result.payment_intent_id, "token-123")
    assert store.get(notification).payment_task_token == "token-123"
    assert store.get(notification).status == "awaiting_payment_action"

    cancelled = steps.cancel_payment(notification, result.payment_intent_id)
    assert cancelled.outcome == "cancelled"
    assert gateway.cancels == [(result.payment_intent_id, keys.cancel_key(notification))]
    assert store.get(notification).payment_task_token is None


def test_cancel_keeps_a_payment_that_succeeded_at_the_last_moment(steps, gateway, notification):
    gateway.retrieve_status = "succeeded"
    assert steps.cancel_payment(notification, "pi_9").outcome == "already_succeeded"
    assert gateway.cancels == []


def test_send_records_provider_ids_and_uses_one_key_for_primary_and_fallback(
    steps, store, channels, notification
):
    result = steps.send(notification, "email", "ses", attempt=2)
    assert result.provider_message_id == "ses-1"
    sent = channels["ses"].sent[0]
    assert sent.to == "ada@example.com"
    assert sent.idempotency_key == keys.send_key(notification, "email")
    channel = store.get(notification).channels["email"]
    assert (channel.status, channel.provider, channel.fallback) == ("sent", "ses", True)
    event = store.timeline(notification)[-1]
    assert (event.step, event.attempt) == ("SendReceiptEmailViaSes", 3)


def test_a_permanent_refusal_marks_the_channel_rejected_and_escapes_as_invalid_request(
    steps, store, channels, notification
):
    channels["twilio"].failures = [invalid("twilio")]
    with pytest.raises(errors.InvalidRequest):
        steps.send(notification, "sms", "twilio")
    channel = store.get(notification).channels["sms"]
    assert (channel.status, channel.reason) == ("rejected", "21211")


def test_a_transient_failure_leaves_the_channel_pending_for_the_fallback(
    steps, store, channels, notification
):
    channels["sendgrid"].failures = [unavailable("sendgrid")]
    with pytest.raises(errors.ProviderUnavailable):
        steps.send(notification, "email", "sendgrid")
    assert store.get(notification).channels["email"].status == "pending"


def test_record_outcome_writes_the_final_status_and_each_channel(steps, store, notification):
    steps.charge_payment(notification)
    steps.send(notification, "email", "sendgrid")
    state = OutcomeInput.model_validate(
        {
            "notification_id": notification,
            "delivery_policy": {"email": "best_effort", "sms": "best_effort"},
            "ChargePaymentResult": {"status": "succeeded"},
            "SendReceiptEmailResult": {"provider": "sendgrid"},
            "SendSmsError": {"Error": "ProviderUnavailable"},
            "SendSmsViaSnsError": {"Error": "ProviderUnavailable"},
            "ParkSmsResult": {"message_id": "m-1"},
        }
    )
    outcome = steps.record_outcome(state)
    stored = store.get(notification)
    assert outcome.model_dump(mode="json") == {
        "notification_id": notification,
        "status": "partially_delivered",
        "reason": "sms:parked",
    }
    assert stored.status == "partially_delivered"
    assert stored.channels["email"].status == "sent"
    assert stored.channels["sms"].status == "parked"
    assert steps_of(store, notification)[-1] == ("RecordOutcome", "partially_delivered")


def test_refund_is_idempotent_by_notification_and_recorded(steps, store, gateway, notification):
    charged = steps.charge_payment(notification)
    steps.refund_payment(notification)
    steps.refund_payment(notification)
    assert gateway.refunds == [(charged.payment_intent_id, keys.refund_key(notification))] * 2
    assert store.get(notification).payment.refund_id == "re_1"


# --- later tries from the outage queue ---------------------------------------------------------------


class FakeStepFunctions:
    def __init__(self):
        self.successes, self.failures = [], []

    def send_task_success(self, taskToken, output):  # noqa: N803 (boto3 names)
        self.successes.append((taskToken, output))

    def send_task_failure(self, taskToken, error, cause):  # noqa: N803
        self.failures.append((taskToken, error))


class FakeSqs:
    def __init__(self):
        self.sent = []

    def send_message(self, QueueUrl, MessageBody):  # noqa: N803
        self.sent.append((QueueUrl, MessageBody))


@pytest.fixture
def redelivery(steps):
    sfn, sqs = FakeStepFunctions(), FakeSqs()
    worker = Redelivery(
        steps=steps,
        policy=RedeliveryPolicy(max_tries=3, base_delay_seconds=10, max_delay_seconds=25),
        saga=TaskTokenResumer(lambda: sfn),
        sqs=lambda: sqs,
        dead_letter_queue_urls={"email": "email-dlq", "sms": "sms-dlq"},
    )
    return worker, sfn, sqs


def test_redelivery_backs_off_with_growing_capped_delays_then_dead_letters(
    redelivery, store, channels, notification
):
    worker, _sfn, sqs = redelivery
    store.finish(notification, "partially_delivered", "sms:parked")
    delays = []
    message = ParkedMessage(notification_id=notification, channel="sms", kind="sms")
    for tries in (1, 2):
        channels["twilio"].failures = [unavailable("twilio")]
        channels["sns"].failures = [unavailable("sns")]
        with pytest.raises(RetryLater):
            worker.handle(message, tries, delays.append)
    channels["twilio"].failures = [unavailable("twilio")]
    channels["sns"].failures = [unavailable("sns")]
    assert worker.handle(message, 3, delays.append) == "dead_lettered"
    assert delays == [10, 20]
    assert sqs.sent[0][0] == "sms-dlq"
    assert "+447700900123" not in sqs.sent[0][1]
    assert store.get(notification).channels["sms"].status == "dead_lettered"


def test_a_late_sms_upgrades_a_partially_delivered_notification(redelivery, store, steps, notification):
    worker, _sfn, _sqs = redelivery
    steps.send(notification, "email", "sendgrid")
    store.finish(notification, "partially_delivered", "sms:parked")
    outcome = worker.handle(ParkedMessage(notification_id=notification, channel="sms"), 2, lambda _s: None)
    assert outcome == "sent"
    assert store.get(notification).status == "delivered_with_fallback"


def test_a_required_sms_resumes_or_fails_its_waiting_saga(redelivery, store, channels, notification):
    worker, sfn, sqs = redelivery
    message = ParkedMessage(notification_id=notification, channel="sms", task_token="tok")
    assert worker.handle(message, 1, lambda _s: None) == "sent"
    assert sfn.successes[0][0] == "tok"

    channels["twilio"].failures = [unavailable("twilio")]
    channels["sns"].failures = [unavailable("sns")]
    assert worker.handle(message, 3, lambda _s: None) == "given_up"
    assert sfn.failures == [("tok", "ProviderUnavailable")]
    assert sqs.sent == []  # the saga refunds; the SMS must not be redriven after that


def test_a_required_sms_whose_saga_stopped_waiting_is_still_acknowledged(redelivery, notification):
    from botocore.exceptions import ClientError

    # Given a saga that no longer waits (its token timed out while the SMS was parked)
    worker, sfn, _sqs = redelivery

    def spent(**_):
        raise ClientError({"Error": {"Code": "TaskTimedOut"}}, "SendTaskSuccess")

    sfn.send_task_success = spent
    # When the SMS finally goes out, then the message is acknowledged, not retried for nothing
    message = ParkedMessage(notification_id=notification, channel="sms", task_token="tok")
    assert worker.handle(message, 1, lambda _s: None) == "sent"


def test_a_parked_sms_the_provider_already_reported_is_dropped_not_sent_again(
    redelivery, store, channels, notification
):
    # Given an SMS parked after its send's container died once Twilio had accepted it, and Twilio's
    # status callback then reporting it delivered
    worker, _sfn, _sqs = redelivery
    store.finish(notification, "partially_delivered", "sms:parked")
    store.update_channel(notification, "sms", "delivered")
    # When the outage queue's later try comes, then nothing is sent a second time
    outcome = worker.handle(ParkedMessage(notification_id=notification, channel="sms"), 2, lambda _s: None)
    assert outcome == "dropped"
    assert channels["twilio"].sent == []
    assert channels["sns"].sent == []
    assert ("RetryDelivery", "dropped") in {(e.step, e.outcome) for e in store.timeline(notification)}


def test_a_message_for_a_refunded_notification_is_dropped_not_sent(redelivery, store, channels, notification):
    worker, _sfn, _sqs = redelivery
    store.finish(notification, "compensated", "required_email_failed")
    message = ParkedMessage(notification_id=notification, channel="sms")
    assert worker.handle(message, 1, lambda _s: None) == "dropped"
    assert channels["twilio"].sent == []


# --- settling redriven compensation cases --------------------------------------------------------------


def test_a_redriven_refund_case_refunds_once_and_compensates(steps, store, gateway, notification):
    from tidings.saga.reconcile import CompensationCase, Reconciler

    charged = steps.charge_payment(notification)
    store.finish(notification, "failed", "refund_failed")
    reconciler = Reconciler(steps)
    assert (
        reconciler.handle(CompensationCase(kind="refund", notification_id=notification)).outcome
        == "refunded_after_redrive"
    )
    # Redriven again (a duplicate in the queue): no second refund call is needed
    reconciler.handle(CompensationCase(kind="refund", notification_id=notification))
    assert gateway.refunds == [(charged.payment_intent_id, keys.refund_key(notification))]
    assert store.get(notification).status == "compensated"


def _charge_reached_stripe_unrecorded(steps, store, gateway, notification):
    """The saga's charge reached Stripe but its answer was lost (a timeout): no PaymentIntent id stored."""
    steps.charge_payment(notification)
    store.update(notification, **{"payment.payment_intent_id": None, "payment.status": None})
    store.finish(notification, "failed", "charge_outcome_unknown")


def test_an_uncertain_charge_that_went_through_is_found_at_stripe_and_refunded_without_a_new_charge(
    steps, store, gateway, notification
):
    from tidings.saga.reconcile import CompensationCase, Reconciler

    # Given a charge that Stripe took although the saga never learnt of it, and no saga waiting on it
    # (an execution from before AwaitChargeReconciliation existed, or one that was stopped)
    _charge_reached_stripe_unrecorded(steps, store, gateway, notification)
    # When the uncertain-charge case is settled
    outcome = Reconciler(steps).handle(CompensationCase(kind="charge", notification_id=notification))
    # Then Stripe was asked by the notification id, nothing was charged again, and the charge refunded
    assert outcome.outcome == "charge_reconciled_refunded"
    assert [lookup[:2] for lookup in gateway.lookups] == [("notification_id", notification)]
    assert len(gateway.charges) == 1
    assert gateway.refunds == [("pi_1", keys.refund_key(notification))]
    assert store.get(notification).payment.payment_intent_id == "pi_1"
    assert store.notification_for_payment_intent("pi_1") == notification
    assert store.get(notification).status == "compensated"


def test_an_uncertain_charge_that_stripe_has_no_record_of_ends_without_a_charge_or_a_refund(
    steps, store, gateway, notification
):
    from tidings.saga.reconcile import CompensationCase, Reconciler

    # Given a charge that never reached Stripe (Stripe was down)
    store.finish(notification, "failed", "charge_outcome_unknown")
    # When the case is settled, even twice (a duplicate in the queue)
    reconciler = Reconciler(steps)
    assert (
        reconciler.handle(CompensationCase(kind="charge", notification_id=notification)).outcome
        == "charge_reconciled_not_found"
    )
    reconciler.handle(CompensationCase(kind="charge", notification_id=notification))
    # Then nothing is charged to find out and nothing is refunded
    assert (gateway.charges, gateway.refunds) == ([], [])
    assert store.get(notification).status == "payment_not_taken"


def test_an_uncertain_charge_is_looked_up_from_before_the_saga_started_whatever_its_age(
    steps, store, gateway, notification
):
    from datetime import datetime

    from tidings.saga.reconcile import CLOCK_MARGIN, CompensationCase, Reconciler

    # Given a case redriven long after Stripe forgot the charge's idempotency key
    store.update(notification, started_at="2026-01-01T10:00:00.000Z")
    store.finish(notification, "failed", "charge_outcome_unknown")
    Reconciler(steps).handle(CompensationCase(kind="charge", notification_id=notification))
    # Then the lookup covers every intent created since the saga started (less the clock margin)
    started = datetime.fromisoformat("2026-01-01T10:00:00+00:00") - CLOCK_MARGIN
    assert gateway.lookups == [("notification_id", notification, int(started.timestamp()))]
    assert gateway.charges == []


class FakeSaga:
    """The task-token resumer: records what the waiting saga was told; ``spent`` plays a stopped one."""

    def __init__(self, spent: bool = False) -> None:
        self.spent = spent
        self.resumed: list[tuple[str, dict]] = []

    def resume(self, task_token, output):
        self.resumed.append((task_token, dict(output)))
        return not self.spent


def _waiting_for_reconciliation(steps, store, notification, *, charged: bool):
    """RecordOutcome said charge_outcome_unknown and the saga waits in AwaitChargeReconciliation."""
    if charged:
        _charge_reached_stripe_unrecorded(steps, store, None, notification)
    else:
        store.finish(notification, "failed", "charge_outcome_unknown")
    steps.await_charge_reconciliation(notification, "token-rec")
    assert store.get(notification).charge_task_token == "token-rec"


@pytest.mark.parametrize(
    ("policy", "decision", "status", "refunds"),
    [("continue", "continue", "running", 0), ("void", "finished", "compensated", 1)],
)
def test_a_waiting_saga_whose_charge_stripe_has_goes_on_or_is_voided_by_policy(
    steps, store, gateway, notification, policy, decision, status, refunds
):
    from tidings.saga.reconcile import CompensationCase, Reconciler

    # Given a charge Stripe took while the saga never learnt of it, and the saga waiting
    _waiting_for_reconciliation(steps, store, notification, charged=True)
    saga = FakeSaga()
    # When the case is settled (twice: a duplicate in the queue)
    reconciler = Reconciler(steps, saga, found_charge_policy=policy)
    settled = reconciler.handle(CompensationCase(kind="charge", notification_id=notification))
    again = reconciler.handle(CompensationCase(kind="charge", notification_id=notification))
    # Then the saga is told once what to do; nothing is charged again; a refund only if the order is void
    assert settled.resumed == decision
    assert [(token, output["decision"]) for token, output in saga.resumed] == [("token-rec", decision)]
    assert saga.resumed[0][1]["payment_intent_id"] == (None if policy == "void" else "pi_1")
    assert again.outcome == "already_reconciled" if policy == "continue" else again.resumed is None
    assert len(gateway.charges) == 1
    assert len(gateway.refunds) == refunds
    current = store.get(notification)
    assert current.status == status
    assert current.charge_task_token is None
    assert current.payment.payment_intent_id == "pi_1"


@pytest.mark.parametrize(
    ("policy", "decision", "status"),
    [("not_taken", "finished", "payment_not_taken"), ("charge_again", "charge_again", "running")],
)
def test_a_waiting_saga_whose_charge_stripe_has_no_record_of_ends_or_charges_again_by_policy(
    steps, store, gateway, notification, policy, decision, status
):
    from tidings.saga.reconcile import CompensationCase, Reconciler

    _waiting_for_reconciliation(steps, store, notification, charged=False)
    saga = FakeSaga()
    settled = Reconciler(steps, saga, missing_charge_policy=policy).handle(
        CompensationCase(kind="charge", notification_id=notification)
    )
    # Then the saga is told; the reconciler itself never charges (ChargePayment does, with its key)
    assert (settled.resumed, settled.outcome) == (decision, "charge_reconciled_not_found")
    assert saga.resumed[0][1] == {
        "notification_id": notification,
        "decision": decision,
        "status": None if decision == "charge_again" else "payment_not_taken",
        "reason": "charge_reconciled_not_found",
        "payment_intent_id": None,
    }
    assert (gateway.charges, gateway.refunds) == ([], [])
    assert store.get(notification).status == status


def test_a_saga_that_no_longer_waits_has_its_case_settled_without_it(steps, store, gateway, notification):
    from tidings.saga.reconcile import CompensationCase, Reconciler

    # Given the saga's wait is gone (its execution was stopped): the token is spent
    _waiting_for_reconciliation(steps, store, notification, charged=True)
    settled = Reconciler(steps, FakeSaga(spent=True)).handle(
        CompensationCase(kind="charge", notification_id=notification)
    )
    # Then nobody will send the receipt: the charge is given back, once
    assert (settled.outcome, settled.status) == ("charge_reconciled_refunded", "compensated")
    assert gateway.refunds == [("pi_1", keys.refund_key(notification))]
    assert store.get(notification).charge_task_token is None


def test_a_case_redriven_before_its_saga_waits_is_retried_not_settled(steps, store, gateway, notification):
    from tidings.saga.reconcile import CompensationCase, Reconciler, SagaNotWaitingYet

    # Given RecordOutcome said charge_outcome_unknown, and the execution runs on towards its wait
    _charge_reached_stripe_unrecorded(steps, store, gateway, notification)
    store.mark_started(notification, "arn:aws:states:us-east-1:1:execution:saga:" + notification)
    reconciler = Reconciler(steps, FakeSaga(), execution_running=lambda arn: arn.endswith(notification))
    # When the case arrives before the token is stored
    with pytest.raises(SagaNotWaitingYet):
        reconciler.handle(CompensationCase(kind="charge", notification_id=notification))
    # Then nothing was settled behind the saga's back: no refund, the status unchanged
    assert gateway.refunds == []
    assert store.get(notification).status == "failed"


def test_a_refund_case_that_still_fails_raises_for_the_queue_to_retry(steps, store, gateway, notification):
    from tidings.saga.reconcile import CompensationCase, Reconciler

    steps.charge_payment(notification)
    gateway.refund_outcomes = [unavailable("stripe")]
    with pytest.raises(errors.ProviderUnavailable):
        Reconciler(steps).handle(CompensationCase(kind="refund", notification_id=notification))
    assert store.get(notification).status != "compensated"


def test_a_send_recorded_after_the_delivery_webhook_does_not_move_the_status_back(steps, store, notification):
    # Given the provider's delivery webhook was applied first
    store.update_channel(notification, "email", status="delivered")
    # When the send step records its (earlier) acceptance
    steps.send(notification, "email", "sendgrid")
    channel = store.get(notification).channels["email"]
    # Then the status stays delivered and the provider id is still recorded
    assert channel.status == "delivered"
    assert channel.provider_message_id == "sendgrid-1"


def test_a_step_for_an_unknown_notification_fails_with_a_clear_typed_error(steps):
    from tidings.notifications.store import NotificationNotFound

    with pytest.raises(NotificationNotFound, match="no notification missing-id"):
        steps.await_payment_action("missing-id", "pi_1", "token")
    with pytest.raises(NotificationNotFound):
        steps.charge_payment("missing-id")


def test_twilios_status_callback_url_carries_the_request_id_beside_the_notification_id():
    from types import SimpleNamespace
    from urllib.parse import parse_qs, urlsplit

    from tidings.saga.steps import _with_request_id

    url = "https://api.example.com/webhooks/twilio?notification_id=n-1"
    carried = _with_request_id(url, SimpleNamespace(request_id="shop-7:trace.e2e-1"))
    assert parse_qs(urlsplit(carried).query) == {
        "notification_id": ["n-1"],
        "request_id": ["shop-7:trace.e2e-1"],
    }
    # Without a request id, or without a callback URL, nothing changes
    assert _with_request_id(url, SimpleNamespace(request_id=None)) == url
    assert _with_request_id(None, SimpleNamespace(request_id="r-1")) is None


def test_a_switched_off_primary_is_skipped_for_the_fallback_without_a_call(
    steps, store, channels, notification
):
    # Given the live configuration says "e-mail through SES only" (a SendGrid incident)
    steps.switched_off = lambda provider: provider == "sendgrid"
    # When the SendGrid step runs, SendGrid is not called and the typed error sends the saga on to SES
    with pytest.raises(errors.ProviderSwitchedOff) as switched:
        steps.send(notification, "email", "sendgrid")
    assert switched.value.code == "switched_off"
    assert channels["sendgrid"].sent == []
    assert steps_of(store, notification)[-1] == ("SendReceiptEmail", "skipped")
    assert store.timeline(notification)[-1].details["reason"] == "switched_off"
    # And the SES step sends it
    assert steps.send(notification, "email", "ses").provider == "ses"
    assert store.get(notification).channels["email"].fallback is True


def test_redelivery_goes_straight_to_the_fallback_while_the_primary_is_switched_off(
    redelivery, steps, store, channels, notification
):
    worker, _sfn, _sqs = redelivery
    steps.switched_off = lambda provider: provider == "twilio"
    store.finish(notification, "partially_delivered", "sms:parked")
    outcome = worker.handle(ParkedMessage(notification_id=notification, channel="sms"), 1, lambda _s: None)
    assert outcome == "sent"
    assert channels["twilio"].sent == []
    assert len(channels["sns"].sent) == 1
