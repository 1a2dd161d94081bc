"""The local system sets the template's PublicApiBaseUrl to its own API, so Twilio's callbacks reach it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tidings_local.stack.seed import DEFAULT_SEED
from tidings_local.stack.system import LocalSystem

pytestmark = pytest.mark.integration

EVENTS = Path(__file__).resolve().parents[3] / "events"
SEEDED_NOTIFICATION = "011f9926-62c3-5101-bdee-9d1be9e1b669"


@pytest.fixture(scope="module")
def system() -> Iterator[LocalSystem]:
    with LocalSystem.start(seed=DEFAULT_SEED) as local:
        yield local


def test_sms_functions_get_the_local_api_as_their_status_callback_base(system: LocalSystem) -> None:
    # Given the real template, whose PublicApiBaseUrl defaults to "" (no callbacks on a first deploy)
    # Then the local system filled it in with its own API's URL
    for logical_id in ("SendSmsFunction", "RetryDeliveryFunction"):
        environment = system.runtime.pool(logical_id).spec.environment
        assert environment["TWILIO_STATUS_CALLBACK_URL"] == f"{system.api_url}/webhooks/twilio"


def test_a_twilio_status_callback_reaches_the_webhook_receiver_with_the_notification_id(
    system: LocalSystem,
) -> None:
    twilio = system.sandboxes["twilio"]
    twilio.control.clear_webhook_deliveries()

    # When the SMS step sends the seeded notification's text through the Twilio sandbox
    event = json.loads((EVENTS / "send_sms_twilio.json").read_text())
    result = system.invoke("SendSmsFunction", event)
    assert not result.failed, result.payload

    # Then Twilio's status callbacks go to the local API, carry the notification id and are accepted
    deliveries = twilio.control.wait_for_webhooks(count=1, timeout=30)
    assert deliveries
    for delivery in deliveries:
        url = urlsplit(delivery["url"])
        assert f"{url.scheme}://{url.netloc}" == system.api_url
        assert url.path == "/webhooks/twilio"
        assert parse_qs(url.query)["notification_id"] == [SEEDED_NOTIFICATION]
        assert delivery["delivered"] is True, delivery["attempts"]
