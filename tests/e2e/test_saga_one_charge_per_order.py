"""The README's own curl, pasted twice with different Idempotency-Keys, charges the customer once."""

import json
import re
import shlex
import uuid

import pytest
from support.template import ROOT

pytestmark = pytest.mark.e2e


def readme_example() -> tuple[dict, str]:
    """The body and Idempotency-Key of the README's ``curl -X POST .../notifications``, as written."""
    text = (ROOT / "README.md").read_text()
    command = re.search(r"curl -sS -X POST \S+/notifications \\\n(?:.+\n)+?.*}}'", text).group(0)
    words = shlex.split(command.replace("\\\n", " "))
    headers = [words[n + 1] for n, word in enumerate(words) if word == "-H"]
    [key] = [header.split(":", 1)[1].strip() for header in headers if header.startswith("Idempotency-Key:")]
    return json.loads(words[words.index("-d") + 1]), key


def order_charges(system, order_reference):
    return [
        request
        for request in system.sandboxes["stripe"].control.requests("/v1/payment_intents")
        if request["method"] == "POST" and order_reference in str(request.get("form") or request.get("body"))
    ]


def test_the_readme_example_pasted_twice_with_another_key_charges_once(system, saga):
    body, key = readme_example()
    assert body["order_reference"] == "order-1001"
    # The same text with an order reference of its own: the session's other tests may use order-1001.
    reference = f"order-1001-{uuid.uuid4().hex[:8]}"
    body = json.loads(json.dumps(body).replace("order-1001", reference))
    first = saga.notify(body, **{"Idempotency-Key": f"{key}-{reference}"})
    assert first.status_code == 202
    second = saga.notify(body, **{"Idempotency-Key": f"{key}-{reference}-pasted-again"})
    assert second.status_code == 409
    assert second.json()["code"] == "order_already_charged"
    assert second.json()["notification_id"] == first.json()["notification_id"]
    assert second.json()["status_url"] == first.json()["status_url"]
    assert saga.wait_for(first.json()["notification_id"])["status"] == "delivered"
    # After it is charged, the same paste is still refused; a deliberate new charge is not.
    assert saga.notify(body, **{"Idempotency-Key": f"{key}-{reference}-3"}).status_code == 409
    assert len(order_charges(system, reference)) == 1
    again = saga.notify({**body, "new_charge": True}, **{"Idempotency-Key": f"{key}-{reference}-new"})
    assert again.status_code == 202
    assert saga.wait_for(again.json()["notification_id"])["status"] == "delivered"
    assert len(order_charges(system, reference)) == 2
