"""The reconciliation sweeper against the notification table (moto) and fakes of Step Functions, the
webhook queue and the providers' read APIs: each repair once, however often it runs."""

from datetime import UTC, datetime, timedelta

import pytest
from support.saga import notification_request

from tidings.notifications.models import Notification, NotificationStatus
from tidings.notifications.store import iso
from tidings.saga.reconcile_sweep import ReconciliationSweeper

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OLD = iso(NOW - timedelta(hours=2))


class FakeSagas:
    """Step Functions as the sweeper's starter sees it: the execution is recorded on the notification."""

    def __init__(self, store=None) -> None:
        self.store = store
        self.executions: list[str] = []

    def start(self, notification):
        self.executions.append(notification.notification_id)
        if self.store is not None:
            self.store.mark_started(notification.notification_id, f"arn:exec:{notification.notification_id}")
        return True


class FakeQueue:
    def __init__(self, store) -> None:
        self.store = store
        self.published = []

    def publish(self, events):
        # As the webhook processor would: the event lands in the notification's timeline
        from tidings.webhooks.ledger import DynamoNotificationLedger

        for event in events:
            self.published.append(event)
            ledger = DynamoNotificationLedger(self.store)
            ledger.record_webhook(event.notification_id, event)
            if event.channel != "payment" and event.status:
                ledger.advance_channel_status(event.notification_id, event.channel, event.status)


def _stored(store, notification_id, **changes):
    notification = Notification.accepted(notification_id, "client-a", notification_request(), at=OLD)
    store.create(notification.model_copy(update=changes))
    return notification_id


def _sweeper(store, sagas, queue, *, events=(), sms=("delivered", None)):
    return ReconciliationSweeper(
        store=store,
        sagas=sagas,
        webhooks=queue,
        stripe_events=lambda start, end: list(events),
        sms_status=lambda sid: sms,
        stuck_after=timedelta(minutes=30),
        lookback=timedelta(hours=72),
        clock=lambda: NOW,
    )


def test_a_stranded_accepted_notification_has_its_saga_started_once(store):
    # Given a notification stored two hours ago whose saga never started, and one stored just now
    stranded = _stored(store, "n-stranded")
    store.create(Notification.accepted("n-fresh", "client-a", notification_request(), at=iso(NOW)))
    sagas, queue = FakeSagas(store), FakeQueue(store)
    sweeper = _sweeper(store, sagas, queue)
    # When the sweeper runs twice
    first, second = sweeper.sweep(), sweeper.sweep()
    # Then the stranded one is started once (the second sweep finds its execution); the fresh one waits
    assert sagas.executions == [stranded]
    assert (first.sagas_started, second.sagas_started) == (1, 0)


def _stripe_event(event_id, payment_intent_id, notification_id):
    return {
        "id": event_id,
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int((NOW - timedelta(hours=1)).timestamp()),
        "data": {"object": {"id": payment_intent_id, "metadata": {"notification_id": notification_id}}},
    }


def test_an_undelivered_stripe_event_goes_through_the_webhook_path_once(store):
    notification = _stored(store, "n-3ds", status=NotificationStatus.AWAITING_PAYMENT_ACTION)
    events = [
        _stripe_event("evt_1", "pi_1", notification),
        _stripe_event("evt_other", "pi_2", "not-ours"),
        {**_stripe_event("evt_2", "pi_1", notification), "type": "payment_intent.created"},
    ]
    queue = FakeQueue(store)
    sweeper = _sweeper(store, FakeSagas(), queue, events=events)
    first, second = sweeper.sweep(), sweeper.sweep()
    # Ours and of a type Tidings acts on: refetched once, then found in the timeline
    assert [event.event_id for event in queue.published] == ["evt_1"]
    assert queue.published[0].notification_id == notification
    assert (first.stripe_events_refetched, second.stripe_events_refetched) == (1, 0)


def test_an_sms_stuck_in_sent_is_asked_of_twilio_and_updated_once(store):
    notification = _stored(store, "n-sms", status=NotificationStatus.DELIVERED)
    store.update_channel(notification, "sms", "sent", provider="twilio", provider_message_id="SM" + "a" * 32)
    store.update(notification, **{"channels.sms.updated_at": OLD})
    queue = FakeQueue(store)
    sweeper = _sweeper(store, FakeSagas(), queue, sms=("delivered", None))
    first, second = sweeper.sweep(), sweeper.sweep()
    # The status callback Twilio would have sent: same identity as the real one (<sid>:<status>)
    assert [event.event_id for event in queue.published] == ["SM" + "a" * 32 + ":delivered"]
    assert store.get(notification).channels["sms"].status == "delivered"
    assert (first.deliveries_updated, second.deliveries_updated) == (1, 0)


def test_an_sms_twilio_still_calls_sent_is_left_for_a_later_sweep(store):
    notification = _stored(store, "n-slow", status=NotificationStatus.DELIVERED)
    store.update_channel(notification, "sms", "sent", provider="twilio", provider_message_id="SM" + "b" * 32)
    store.update(notification, **{"channels.sms.updated_at": OLD})
    queue = FakeQueue(store)
    repairs = _sweeper(store, FakeSagas(), queue, sms=("sent", None)).sweep()
    assert (repairs.deliveries_updated, repairs.deliveries_unknown, queue.published) == (0, 0, [])
    assert store.get(notification).channels["sms"].status == "sent"


def test_an_email_with_no_report_to_read_is_marked_unknown_once(store):
    notification = _stored(store, "n-mail", status=NotificationStatus.DELIVERED)
    store.update_channel(notification, "email", "sent", provider="ses", provider_message_id="ses-1")
    store.update(notification, **{"channels.email.updated_at": OLD})
    sweeper = _sweeper(store, FakeSagas(), FakeQueue(store))
    first, second = sweeper.sweep(), sweeper.sweep()
    email = store.get(notification).channels["email"]
    assert (email.status, email.delivery_status) == ("sent", "unknown")
    assert (first.deliveries_unknown, second.deliveries_unknown) == (1, 0)
    marks = [
        e
        for e in store.timeline(notification)
        if (e.step, e.outcome) == ("ReconcileSweep", "delivery_unknown")
    ]
    assert len(marks) == 1


def test_a_message_twilio_no_longer_knows_is_counted_and_the_sweep_goes_on(store):
    from tidings import errors

    # Given two SMS still sent, the first of which Twilio answers 404 for
    for number, name in enumerate(("n-gone", "n-here")):
        _stored(store, name, status=NotificationStatus.DELIVERED)
        store.update_channel(name, "sms", "sent", provider="twilio", provider_message_id=f"SM{number:032d}")
        store.update(name, **{"channels.sms.updated_at": OLD})

    def status(sid):
        if sid == f"SM{0:032d}":
            raise errors.ResourceNotFound("not found", provider="twilio", status=404)
        return ("delivered", None)

    queue = FakeQueue(store)
    sweeper = _sweeper(store, FakeSagas(), queue)
    sweeper.sms_status = status
    repairs = sweeper.sweep()
    # Then the other one is still repaired, and the failure counted for the next sweep to retry
    assert (repairs.checks_failed, repairs.deliveries_updated) == (1, 1)
    assert store.get("n-here").channels["sms"].status == "delivered"
    assert store.get("n-gone").channels["sms"].status == "sent"
