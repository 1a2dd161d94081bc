"""A bulk request of 1,000 notifications completes under low provider rate limits, none failing for it.

Set TIDINGS_BULK_ITEMS to run a smaller batch while iterating; the acceptance figure is 1,000.
"""

import os
import time
import uuid
from collections import Counter

import pytest
from saga_e2e_support import order_body

pytestmark = pytest.mark.e2e

ITEMS = int(os.environ.get("TIDINGS_BULK_ITEMS", "1000"))
#: Requests per second each sandbox allows (far below a real account's limits) and its burst: one request
#: per 200 ms at most, so the saga's concurrent containers are refused (429 with Retry-After) and retry.
SANDBOX_RATE = 5
SANDBOX_BURST = 1


@pytest.mark.timeout(3600)
def test_a_thousand_notifications_complete_within_the_providers_rate_limits(system, saga):
    # Given every provider sandbox rate-limits hard (429 with Retry-After)
    for sandbox in system.sandboxes.values():
        sandbox.control.set_rate_limit(SANDBOX_RATE, SANDBOX_BURST)
    run = uuid.uuid4().hex[:8]
    items = [order_body(f"bulk-{run}-{n:04d}") for n in range(ITEMS)]

    # When they are sent in one bulk request
    started = time.monotonic()
    answer = saga.http.post("/notifications/bulk", json={"items": items}, headers=saga.headers())
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert (accepted["accepted"], accepted["rejected"]) == (ITEMS, 0)

    # Then every item reaches a final status, read per item from the bulk status route
    final = {
        "delivered",
        "delivered_with_fallback",
        "partially_delivered",
        "payment_declined",
        "compensated",
        "failed",
    }
    while True:
        summary = saga.http.get(accepted["status_url"], headers=saga.headers()).json()
        if sum(count for status, count in summary["counts"].items() if status in final) == ITEMS:
            break
        assert time.monotonic() - started < 3000, summary["counts"]
        time.sleep(2)
    elapsed = time.monotonic() - started
    print(f"\n{ITEMS} notifications in {elapsed:.0f} s with sandboxes limited to {SANDBOX_RATE} requests/s")

    # No rate-limited request ended in a failure: everything was delivered (at worst by a fallback)
    statuses = Counter(item["notification_status"] for item in summary["items"])
    assert set(statuses) <= {"delivered", "delivered_with_fallback"}, statuses
    # The limits really bit, and each order was charged under one idempotency key (one PaymentIntent)
    stripe_requests = system.sandboxes["stripe"].control.requests("/v1/payment_intents")
    rejected = sum(
        1
        for sandbox in system.sandboxes.values()
        for request in sandbox.control.requests()
        if request["status"] == 429
    )
    assert rejected > 0
    charged = Counter(
        request["headers"].get("idempotency-key") or request["headers"].get("Idempotency-Key")
        for request in stripe_requests
        if request["method"] == "POST" and request["status"] == 200
    )
    assert len(charged) == ITEMS
