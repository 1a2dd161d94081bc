"""A templated receipt and SMS through the send step: rendered from the catalogue for SES and SMS, named
by its SendGrid template for SendGrid, and refused for good when it no longer renders."""

import pytest
from support.saga import notification_request

from tidings import errors
from tidings.notifications.models import Notification
from tidings.templates.catalog import get_catalog

pytestmark = pytest.mark.unit

NID = "22222222-3333-4444-5555-666666666666"
DATA = {
    "customer_name": "Ada",
    "order_reference": "order-1001",
    "total": "£25.99",
    "items": [{"name": "Tea <loose>", "quantity": 2, "price": "£12.99"}],
}


def _notification(store, receipt=None, sms=None):
    request = notification_request(
        receipt=receipt or {"template_id": "order_receipt", "dynamic_template_data": DATA, "locale": "fr"},
        sms=sms or {"template_id": "order_receipt", "dynamic_template_data": DATA, "locale": "fr-CA"},
    )
    store.create(Notification.accepted(NID, "client-a", request, at=store.now()))
    return NID


def test_sendgrid_gets_the_locales_dynamic_template_and_the_data(steps, store, channels):
    notification = _notification(store)
    steps.send(notification, "email", "sendgrid")
    [sent] = channels["sendgrid"].sent
    french = get_catalog().render_email("order_receipt", DATA, "fr")
    assert sent.sendgrid_template_id == french.sendgrid_template_id
    assert sent.template_data == DATA
    event = store.timeline(notification)[-1]
    assert event.details["template_id"] == "order_receipt"
    assert event.details["locale"] == "fr"
    assert event.details["sendgrid_template_id"] == french.sendgrid_template_id
    assert "Ada" not in str(event.details)  # ids only on the timeline, never the data


def test_ses_gets_the_same_receipt_rendered_by_tidings(steps, store, channels):
    notification = _notification(store)
    steps.send(notification, "email", "ses")
    [sent] = channels["ses"].sent
    assert sent.subject == "Votre reçu pour la commande order-1001"
    assert "<td>2 x Tea &lt;loose&gt;</td>" in sent.html
    assert "2 x Tea <loose>" in sent.text
    assert "<" not in sent.text.replace("<loose>", "")


@pytest.mark.parametrize("provider", ["twilio", "sns"])
def test_a_templated_sms_is_rendered_in_its_locale_for_either_provider(steps, store, channels, provider):
    notification = _notification(store)
    steps.send(notification, "sms", provider)
    [sent] = channels[provider].sent
    assert sent.body == "Commande order-1001 payée (£25.99). Merci, Ada !"


def test_a_template_that_no_longer_renders_is_a_permanent_refusal(steps, store, channels, monkeypatch):
    notification = _notification(store)
    catalog = get_catalog()
    monkeypatch.setattr(catalog, "_templates", {})
    monkeypatch.setattr(catalog, "directory", catalog.directory / "gone")
    with pytest.raises(errors.InvalidRequest) as refused:
        steps.send(notification, "email", "sendgrid")
    assert refused.value.code == "template_not_found"
    assert channels["sendgrid"].sent == []
    channel = store.get(notification).channels["email"]
    assert (channel.status, channel.reason) == ("rejected", "template_not_found")
