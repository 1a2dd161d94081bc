"""The reconciliation sweeper on the local system: a repair per straggler, each made once however often
the sweeper runs (ReconcileSweepFunction invoked as its schedule would, with a threshold of zero)."""

import json

import boto3
import pytest
from support.e2e import order_body

from tidings.notifications.models import Notification, NotificationRequest
from tidings.notifications.store import NotificationStore

pytestmark = pytest.mark.e2e

SWEEPER = "ReconcileSweepFunction"


@pytest.fixture
def sweep(system):
    """Run the sweeper once; anything older than now counts as stuck (the threshold is zero)."""
    pool = system.runtime.pool(SWEEPER)
    before = dict(pool.spec.environment)
    system.set_function_env(SWEEPER, {"RECONCILE_STUCK_AFTER_MINUTES": "0"})

    def run() -> dict:
        result = system.invoke(SWEEPER, {})
        assert not result.failed, result.payload
        return result.json()

    yield run
    pool.spec.environment.clear()
    pool.spec.environment.update(before)
    pool.recycle()


def _store(system) -> NotificationStore:
    dynamodb = boto3.resource(
        "dynamodb",
        endpoint_url=system.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return NotificationStore(dynamodb.Table(system.physical_id("NotificationsTable")))


def _steps(notification: dict, step: str, outcome: str | None = None) -> list[dict]:
    return [e for e in notification["timeline"] if e["step"] == step and outcome in (None, e["outcome"])]


def test_a_notification_stranded_accepted_gets_its_saga_once(system, saga, sweep):
    # Given a notification the API stored but whose saga never started (its invocation died)
    store = _store(system)
    notification_id = "5a5a5a5a-0000-4000-8000-000000000001"
    request = NotificationRequest.model_validate(order_body())
    store.create(Notification.accepted(notification_id, "local-user", request, at=store.now()))

    # When the sweeper runs, and runs again while the saga goes on
    first = sweep()
    second = sweep()

    # Then the saga was started once, named after the notification, and delivered with one charge
    assert first["sagas_started"] >= 1
    assert second["sagas_started"] == 0
    final = saga.wait_for(notification_id)
    assert final["status"] == "delivered"
    assert len(_steps(final, "ReconcileSweep", "saga_started")) == 1
    stripe = system.sandboxes["stripe"].control
    charges = [
        r
        for r in stripe.requests("/v1/payment_intents")
        if r["method"] == "POST" and r["status"] == 200 and notification_id in json.dumps(r.get("form"))
    ]
    assert len(charges) == 1


def test_a_stripe_webhook_the_sandbox_never_delivered_is_fetched_and_applied_once(system, saga, sweep):
    # Given a 3-D Secure payment whose success Stripe could not deliver to the endpoint
    stripe = system.sandboxes["stripe"].control
    accepted = saga.notify(order_body(payment={"payment_method": "pm_card_threeDSecure2Required"})).json()
    waiting = saga.wait_for(accepted["notification_id"], {"awaiting_payment_action"})
    stripe.pause_webhooks()
    stripe.complete_action(waiting["payment"]["payment_intent_id"])
    stripe.wait_for_webhooks()
    assert saga.status(accepted["notification_id"])["status"] == "awaiting_payment_action"

    # When the sweeper runs twice
    first = sweep()
    final = saga.wait_for(accepted["notification_id"])
    second = sweep()

    # Then the event went through the webhook path once: the saga resumed and delivered
    assert first["stripe_events_refetched"] >= 1
    assert second["stripe_events_refetched"] == 0
    assert final["status"] == "delivered"
    succeeded = [e for e in _steps(final, "WebhookStripe") if e["outcome"] == "payment_intent.succeeded"]
    assert len(succeeded) == 1
    assert saga.status(accepted["notification_id"])["payment"]["status"] == "succeeded"


def test_an_sms_stuck_in_sent_is_asked_of_twilio_and_recorded_once(system, saga, sweep):
    # Given Twilio's status callbacks never reach us: the SMS stays sent after the saga ends
    system.sandboxes["twilio"].control.pause_webhooks()
    result = saga.run(order_body())
    notification_id = result["notification_id"]
    system.sandboxes["twilio"].control.wait_for_webhooks()
    assert saga.status(notification_id)["channels"]["sms"]["status"] == "sent"

    # When the sweeper runs twice
    first = sweep()
    saga.wait_for_event(notification_id, "WebhookTwilio", "delivered")
    delivered = saga.wait_for_channel(notification_id, "sms", {"delivered"})
    second = sweep()

    # Then Twilio's own word (delivered) was recorded once, as its callback would have been
    assert first["deliveries_updated"] >= 1
    assert second["deliveries_updated"] == 0
    assert delivered["channels"]["sms"]["status"] == "delivered"
    assert len(_steps(saga.status(notification_id), "WebhookTwilio", "delivered")) == 1
    fetched = [
        r
        for r in system.sandboxes["twilio"].control.requests("/2010-04-01")
        if r["method"] == "GET" and result["channels"]["sms"]["provider_message_id"] in r["path"]
    ]
    assert len(fetched) == 1
