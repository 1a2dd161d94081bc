"""A channel's status only moves forward, whichever writer comes last: send steps, RecordOutcome, later
tries and delivery webhooks all go through the notification store's one conditional write."""

import itertools

import pytest
from support.saga import notification_request

from tidings.notifications.models import CHANNEL_STATUS_RANK, ChannelStatus, Compensation, Notification
from tidings.notifications.store import NotificationNotFound
from tidings.saga.outcome import OutcomeInput
from tidings.webhooks.ledger import DynamoNotificationLedger

pytestmark = pytest.mark.unit

NID = "22222222-3333-4444-5555-666666666666"
ALL = list(CHANNEL_STATUS_RANK)


@pytest.fixture
def notification(store):
    store.create(Notification.accepted(NID, "client-a", notification_request(), at=store.now()))
    return NID


@pytest.fixture
def ledger(store):
    return DynamoNotificationLedger(store)


def email(store, notification_id=NID):
    return store.get(notification_id).channels["email"]


def sent_state():
    """An execution state in which both channels were sent by their primary providers."""
    return OutcomeInput.model_validate(
        {
            "notification_id": NID,
            "delivery_policy": {"email": "best_effort", "sms": "best_effort"},
            "ChargePaymentResult": {"status": "succeeded"},
            "SendReceiptEmailResult": {"provider": "sendgrid"},
            "SendSmsResult": {"provider": "twilio"},
        }
    )


def test_a_delivery_report_then_the_send_steps_sent_stays_delivered(steps, store, ledger, notification):
    # Given SendGrid's "delivered" report was processed before the send step recorded its acceptance
    assert ledger.advance_channel_status(notification, "email", "delivered") is True
    # When the send step and then RecordOutcome write "sent"
    steps.send(notification, "email", "sendgrid")
    steps.record_outcome(sent_state())
    # Then the channel still says delivered, with the provider's message id recorded all the same
    channel = email(store)
    assert (channel.status, channel.delivery_status) == ("delivered", "delivered")
    assert channel.provider_message_id == "sendgrid-1"


def test_an_early_bounce_then_sent_stays_rejected(steps, store, ledger, notification):
    # Given a bounce processed while the saga was still running
    assert ledger.advance_channel_status(notification, "email", "bounced") is True
    # When the send step's "sent" and RecordOutcome's "sent" arrive afterwards
    steps.send(notification, "email", "sendgrid")
    steps.record_outcome(sent_state())
    # Then the bounce is not hidden
    channel = email(store)
    assert (channel.status, channel.delivery_status) == ("rejected", "bounced")


def test_late_reports_never_move_a_channel_back(store, ledger, notification):
    # Given a delivered SMS
    ledger.advance_channel_status(notification, "sms", "delivered")
    # When Twilio's earlier "sent" arrives late
    kept = ledger.advance_channel_status(notification, "sms", "sent")
    # Then nothing changes, neither the status nor the provider's word
    sms = store.get(notification).channels["sms"]
    assert kept is False
    assert (sms.status, sms.delivery_status) == ("delivered", "delivered")


def test_a_parked_sms_sent_by_the_outage_queue_before_record_outcome_stays_sent(store, notification):
    # Given the outage queue's consumer sent the parked SMS
    store.update_channel(notification, "sms", ChannelStatus.SENT, provider="twilio")
    # When RecordOutcome (which only knew it was parked) writes its view
    kept = store.update_channel(
        notification, "sms", ChannelStatus.PARKED, with_status={"reason": "providers_unavailable"}
    )
    # Then sent stays, and the reason that belongs to "parked" is not written either
    sms = store.get(notification).channels["sms"]
    assert kept is False
    assert sms.status == "sent"
    assert sms.reason is None


def test_a_dead_lettered_email_can_still_be_redriven_and_sent(store, notification):
    store.update_channel(notification, "email", ChannelStatus.DEAD_LETTERED)
    assert store.update_channel(notification, "email", ChannelStatus.SENT, provider="ses") is True
    assert email(store).status == "sent"


@pytest.mark.parametrize("first", ALL)
def test_every_pair_of_writes_ends_at_the_higher_rank(store, first):
    # Given a notification per second status, each channel first set to `first`
    for index, second in enumerate(ALL):
        notification_id = f"{NID[:-2]}{index:02d}"
        store.create(
            Notification.accepted(notification_id, "client-a", notification_request(), at=store.now())
        )
        store.update_channel(notification_id, "email", first)
        # When `second` is written after it
        moved = store.update_channel(notification_id, "email", second)
        # Then the status is `second` only if it ranks higher (or is the same), else `first` stays
        forward = CHANNEL_STATUS_RANK[second] > CHANNEL_STATUS_RANK[first] or second == first
        assert moved is forward
        assert email(store, notification_id).status == (second if forward else first)


def test_every_channel_status_has_a_rank_in_the_documented_order():
    # A confirmation beats our own "sent"; a bounce beats a confirmation; a refund's "failed" is the end.
    order = [ChannelStatus.PENDING, ChannelStatus.PARKED, ChannelStatus.DEAD_LETTERED, ChannelStatus.SENT]
    order += [ChannelStatus.DELIVERED, ChannelStatus.REJECTED, ChannelStatus.FAILED]
    ranks = [CHANNEL_STATUS_RANK[status] for status in order]
    assert ranks == sorted(set(ranks))
    # A status without a rank could not be written at all
    assert set(CHANNEL_STATUS_RANK) == set(ChannelStatus)


def test_a_status_for_an_unknown_notification_is_a_typed_not_found(store):
    with pytest.raises(NotificationNotFound):
        store.update_channel("missing-id", "email", ChannelStatus.SENT, provider="sendgrid")
    with pytest.raises(NotificationNotFound):
        store.update_channel("missing-id", "email", ChannelStatus.SENT)


def test_concurrent_writers_interleaved_in_any_order_end_at_the_highest(store):
    # Every order of the saga's and the webhooks' writes for one channel ends the same way
    writes = [ChannelStatus.SENT, ChannelStatus.DELIVERED, ChannelStatus.REJECTED]
    for index, order in enumerate(itertools.permutations(writes)):
        notification_id = f"{NID[:-2]}{index:02d}"
        store.create(
            Notification.accepted(notification_id, "client-a", notification_request(), at=store.now())
        )
        for status in order:
            store.update_channel(notification_id, "email", status)
        assert email(store, notification_id).status == "rejected"


def test_a_compensation_after_the_saga_is_recorded_as_the_refund_step_records_it(store, ledger, notification):
    # Given a waiting token left on a notification whose required e-mail bounced after the saga ended
    store.store_task_token(notification, "token-1")
    # When the webhook processor records the refund it made
    ledger.mark_compensated(
        notification,
        Compensation(
            channel="email",
            reason="bounced",
            refund_id="re_9",
            refund_status="succeeded",
            payment_intent_id="pi_9",
        ),
    )
    # Then payment, channel and status say so in one write, the token is gone, and the timeline has it
    stored = store.get(notification)
    assert (stored.status, stored.status_reason) == ("compensated", "required_email_failed")
    assert (stored.channels["email"].status, stored.channels["email"].reason) == ("failed", "bounced")
    assert (stored.payment.status, stored.payment.refund_id, stored.payment.refund_status) == (
        "refunded",
        "re_9",
        "succeeded",
    )
    assert stored.payment_task_token is None
    [refund] = [event for event in store.timeline(notification) if event.step == "RefundPayment"]
    assert (refund.outcome, refund.provider) == ("refunded", "stripe")
    assert refund.details == {"refund_id": "re_9", "payment_intent_id": "pi_9", "reason": "email_bounced"}


def test_payment_status_moves_forward_only(store):
    from tidings.notifications.models import Notification, NotificationRequest

    request = NotificationRequest.model_validate(
        {
            "order_reference": "order-9",
            "customer": {"name": "Ada", "email": "ada@example.com", "phone": "+447700900123"},
            "payment": {"amount": 100, "currency": "gbp", "payment_method": "pm_card_visa"},
            "receipt": {"subject": "Receipt", "text": "Thanks"},
            "sms": {"text": "Paid"},
        }
    )
    store.create(Notification.accepted("n-pay", "client", request, at=store.now()))
    store.record_charge("n-pay", payment_intent_id="pi_1", status="requires_action", next_action_url="u")
    assert store.set_payment_status("n-pay", "succeeded") is True
    # A late or retried charge answer never moves it back
    store.record_charge("n-pay", payment_intent_id="pi_1", status="requires_action", next_action_url="u")
    assert store.set_payment_status("n-pay", "requires_action") is False
    assert store.get("n-pay").payment.status == "succeeded"
    assert store.set_payment_status("n-pay", "refunded") is True
    assert store.get("n-pay").payment.status == "refunded"


def test_a_charge_is_recorded_in_one_write_and_its_ids_even_when_a_webhook_moved_the_status_on(store):
    from tidings.notifications.models import Notification, NotificationRequest

    request = NotificationRequest.model_validate(
        {
            "order_reference": "order-10",
            "customer": {"name": "Ada", "email": "ada@example.com", "phone": "+447700900123"},
            "payment": {"amount": 100, "currency": "gbp", "payment_method": "pm_card_visa"},
            "receipt": {"subject": "Receipt", "text": "Thanks"},
            "sms": {"text": "Paid"},
        }
    )
    store.create(Notification.accepted("n-charge", "client", request, at=store.now()))
    writes: list[str] = []
    store._table.meta.client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: writes.append(model.name), unique_id="count-writes"
    )
    # When the charge's answer is recorded
    store.record_charge("n-charge", payment_intent_id="pi_1", status="requires_action", next_action_url="u")
    # Then it is one UpdateItem: the intent, the 3-D Secure link and the status together
    assert writes == ["UpdateItem"]
    stored = store.get("n-charge").payment
    assert (stored.payment_intent_id, stored.next_action_url) == ("pi_1", "u")
    assert stored.status == "requires_action"
    # And a retried charge answering after the webhook's succeeded keeps the status, still writing its ids
    store.set_payment_status("n-charge", "succeeded")
    store.record_charge("n-charge", payment_intent_id="pi_1", status="requires_action", next_action_url="v")
    stored = store.get("n-charge").payment
    assert (stored.status, stored.next_action_url) == ("succeeded", "v")
    # And a charge for a notification that is not there says so
    from tidings.notifications.store import NotificationNotFound

    with pytest.raises(NotificationNotFound):
        store.record_charge("n-missing", payment_intent_id="pi_2", status="succeeded", next_action_url=None)


def test_a_charge_starts_by_moving_the_notification_to_running_in_the_write_that_reads_it(
    store, notification
):
    from tidings.notifications.store import NotificationNotFound

    requests: list[str] = []
    store._table.meta.client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: requests.append(model.name), unique_id="count-start"
    )
    # When the charge step starts on a notification
    started = store.start_running(notification)
    # Then one UpdateItem moved it to running and answered with the whole notification
    assert requests == ["UpdateItem"]
    assert started.status == "running"
    assert started == store.get(notification)
    # And a notification that is not there is not created by it
    with pytest.raises(NotificationNotFound):
        store.start_running("n-missing")
    with pytest.raises(NotificationNotFound):
        store.get("n-missing")
