"""The shop's refund and cancel on the local system, through the SDK: Stripe's sandbox counts the refunds
and holds the PaymentIntent's end."""

import pytest
from support.e2e import order_body

from tidings_sdk import ApiError

pytestmark = pytest.mark.e2e


def refunds(system, payment_intent_id):
    state = system.sandboxes["stripe"].control.state()
    return [r["amount"] for r in state["refunds"] if r["payment_intent"] == payment_intent_id]


def test_a_partial_refund_a_repeat_and_one_too_large(system, saga):
    # Given a delivered notification (the payment alone: no channel to wait for)
    done = saga.run(order_body(receipt=None, sms=None))
    assert done["status"] == "delivered"
    nid, intent = done["notification_id"], done["payment"]["payment_intent_id"]
    # When the shop refunds part of it, and sends the same request again
    first = saga.sdk.refund_notification(nid, amount=599, idempotency_key=f"refund-{nid}")
    again = saga.sdk.refund_notification(nid, amount=599, idempotency_key=f"refund-{nid}")
    # Then the answer is the same and Stripe refunded once
    assert first == again
    assert (first.status, first.refund.amount, first.payment.remaining) == ("partially_refunded", 599, 2000)
    assert refunds(system, intent) == [599]
    # And a refund above what remains is refused, nothing refunded
    with pytest.raises(ApiError) as refused:
        saga.sdk.refund_notification(nid, amount=2001)
    assert (refused.value.status, refused.value.code) == (422, "refund_exceeds_remaining")
    assert refunds(system, intent) == [599]
    assert saga.status(nid)["status"] == "partially_refunded"


def test_cancelling_a_3ds_wait_cancels_the_payment_and_a_finished_one_is_refused(system, saga):
    # Given a saga waiting for 3-D Secure
    accepted = saga.notify(order_body(payment={"payment_method": "pm_card_threeDSecure2Required"})).json()
    nid = accepted["notification_id"]
    waiting = saga.wait_for(nid, {"awaiting_payment_action"})
    # When the shop cancels it
    answer = saga.sdk.cancel_notification(nid)
    assert (answer.status, answer.waited_for) == ("cancelling", "payment_action")
    # Then the saga cancels the PaymentIntent and ends cancelled, nothing sent
    done = saga.wait_for(nid)
    assert (done["status"], done["status_reason"]) == ("cancelled", "cancelled_before_payment")
    intent = waiting["payment"]["payment_intent_id"]
    state = system.sandboxes["stripe"].control.state()
    assert {i["id"]: i["status"] for i in state["payment_intents"]}[intent] == "canceled"
    assert {channel["status"] for channel in done["channels"].values()} == {"skipped"}
    # A repeat answers the status it led to; a refund of it is refused (nothing was charged)
    assert saga.sdk.cancel_notification(nid).status == "cancelled"
    with pytest.raises(ApiError) as refused:
        saga.sdk.refund_notification(nid)
    assert (refused.value.status, refused.value.code) == (409, "not_charged")
