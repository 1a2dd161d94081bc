"""payment.status follows the saga and Stripe's webhooks forward; locally 3-D Secure has a challenge URL."""

import httpx
import pytest
from support.e2e import order_body

pytestmark = pytest.mark.e2e

THREE_D_SECURE = {"payment": {"payment_method": "pm_card_threeDSecure2Required"}}


def test_a_completed_challenge_reads_succeeded_and_its_url_opens_the_challenge_page(system, saga):
    accepted = saga.notify(order_body(**THREE_D_SECURE)).json()
    waiting = saga.wait_for(accepted["notification_id"], {"awaiting_payment_action"})
    assert waiting["payment"]["status"] == "requires_action"
    url = waiting["payment"]["next_action_url"]
    intent = waiting["payment"]["payment_intent_id"]
    assert url.endswith(f"/_sandbox/stripe/payment_intents/{intent}/challenge")
    page = httpx.get(url, timeout=10)
    assert page.status_code == 200
    assert "complete_action" in page.text
    system.sandboxes["stripe"].control.complete_action(intent, "succeeded")
    result = saga.wait_for(accepted["notification_id"])
    assert result["status"] == "delivered"
    assert result["payment"]["status"] == "succeeded"


def test_a_failed_challenge_reads_failed(system, saga):
    accepted = saga.notify(order_body(**THREE_D_SECURE)).json()
    waiting = saga.wait_for(accepted["notification_id"], {"awaiting_payment_action"})
    system.sandboxes["stripe"].control.complete_action(waiting["payment"]["payment_intent_id"], "failed")
    result = saga.wait_for(accepted["notification_id"])
    assert result["status"] == "payment_declined"
    assert result["payment"]["status"] == "failed"
