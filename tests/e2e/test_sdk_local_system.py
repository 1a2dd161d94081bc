"""The shops' SDK (sdk/python) against the whole local system: every route it calls answers what its models
read, refusals arrive as its typed errors, and the status callbacks verify with its webhook check."""

import json
import time
import uuid

import pytest
from support.e2e import API_TIMEOUT_SECONDS, WAIT_SECONDS, order_body

from tidings_sdk import (
    FINAL_STATUSES,
    Forbidden,
    NotFound,
    NotificationRequest,
    OrderAlreadyCharged,
    RetryPolicy,
    TidingsClient,
    ValidationFailed,
)
from tidings_sdk.webhooks import ChannelUpdated, NotificationFinished, verify_event

pytestmark = pytest.mark.e2e


def sdk(system, **claims) -> TidingsClient:
    """The client a shop would build, its token minted per try, its retries short (no long waits)."""
    retry = RetryPolicy(max_attempts=3, base_delay_seconds=0.1, max_delay_seconds=2)
    return TidingsClient(
        system.api_url, token=lambda: system.token(**claims), retry=retry, timeout=API_TIMEOUT_SECONDS
    )


def signing_secret(system) -> str:
    value = system.boto3_client("secretsmanager").get_secret_value(
        SecretId=system.physical_id("CallbackSigningSecret")
    )
    return json.loads(value["SecretString"])["signing_secret"]


def test_a_notification_through_the_sdk_from_create_to_its_verified_callback(system, saga):
    # Given a shop's client and a typed request that asks for callbacks
    tidings = sdk(system)
    request = NotificationRequest.model_validate(
        order_body(callback_url=system.callback_receiver.callback_url)
    )

    # When it creates the notification, and repeats the call with the same key
    accepted = tidings.create_notification(request, idempotency_key=f"sdk-{uuid.uuid4()}")
    deadline = time.monotonic() + WAIT_SECONDS
    while (notification := tidings.get_notification(accepted.notification_id)).status not in FINAL_STATUSES:
        assert time.monotonic() < deadline, notification.status
        time.sleep(0.2)

    # Then every read route answers in the SDK's models, which keep the answer as it came (one answer
    # read both ways: a delivery webhook may change the notification between two reads)
    raw = tidings.request("GET", f"/notifications/{accepted.notification_id}").json()
    assert type(notification).model_validate(raw).model_dump(mode="json", exclude_unset=True) == raw
    assert notification.status == "delivered"
    assert notification.finished
    assert notification.channels["email"].status in {"sent", "delivered"}
    assert notification.customer.email == "a***@example.com"
    listed = tidings.list_notifications(order_reference=request.order_reference)
    assert [item.notification_id for item in listed.items] == [accepted.notification_id]
    timeline = tidings.get_timeline(accepted.notification_id)
    assert timeline.entries[-1].kind == "final_status"
    assert [entry.order for entry in timeline.entries] == list(range(1, len(timeline.entries) + 1))

    # And a second notification for the charged order (a new key) is the typed 409 naming the first
    with pytest.raises(OrderAlreadyCharged) as refused:
        tidings.create_notification(request)
    assert refused.value.notification_id == accepted.notification_id

    # And the callbacks verify with the SDK's check and read as its typed events: the finished one, and
    # each channel's change out of the door ("sent", or "delivered" when the provider's webhook came first)
    secret = signing_secret(system)

    def read_events():
        records = [
            r
            for r in system.callback_receiver.callbacks()
            if (r["data"] or {}).get("notification_id") == accepted.notification_id
        ]
        return records, [verify_event(record["body"], record["headers"], secret) for record in records]

    def left(events):
        return {
            event.data.channel
            for event in events
            if isinstance(event, ChannelUpdated) and event.data.channel_status in {"sent", "delivered"}
        }

    records, events = read_events()
    while not (any(isinstance(e, NotificationFinished) for e in events) and left(events) == {"email", "sms"}):
        assert time.monotonic() < deadline, [record["type"] for record in records]
        time.sleep(0.3)
        records, events = read_events()
    [finished] = [event for event in events if isinstance(event, NotificationFinished)]
    assert finished.data.status == "delivered"
    assert finished.id == next(r["webhook_id"] for r in records if r["type"] == "notification.finished")


def test_refusals_of_the_local_api_arrive_as_the_sdks_typed_errors(system, saga):
    sfn = system.boto3_client("stepfunctions")
    machine = system.physical_id("NotificationSagaStateMachine")
    before = len(sfn.list_executions(stateMachineArn=machine, maxResults=1000)["executions"])
    tidings = sdk(system)

    # An invalid request: every problem located, and nothing started
    with pytest.raises(ValidationFailed) as invalid:
        tidings.create_notification(order_body(customer={"email": "nobody", "phone": "07700 900123"}))
    assert invalid.value.code == "validation_error"
    assert {tuple(error.loc[-2:]) for error in invalid.value.errors} == {
        ("customer", "email"),
        ("customer", "phone"),
    }

    # An unknown notification; a read-only token sending
    with pytest.raises(NotFound):
        tidings.get_notification(str(uuid.uuid4()))
    with pytest.raises(Forbidden) as forbidden:
        sdk(system, scope="notifications/read").create_notification(order_body())
    assert forbidden.value.code == "forbidden"
    assert len(sfn.list_executions(stateMachineArn=machine, maxResults=1000)["executions"]) == before
