"""Templated receipts end to end: two locales through SendGrid's dynamic templates and through the SES
fallback, the rendered bodies read at the sandboxes; a template that does not fit is refused before any
charge."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from support.e2e import order_body

from tidings.templates.catalog import get_catalog
from tidings_local.stack.system import publish_templates

pytestmark = pytest.mark.e2e

DATA = {
    "customer_name": "Ada",
    "total": "£25.99",
    "items": [{"name": "Tea & biscuits", "quantity": 2, "price": "£12.99"}],
}


def _templated(locale: str) -> dict:
    reference = f"order-{uuid.uuid4().hex[:12]}"
    data = {**DATA, "order_reference": reference}
    content = {"template_id": "order_receipt", "dynamic_template_data": data, "locale": locale}
    body = order_body(reference, receipt=content, sms=content)
    body["receipt"], body["sms"] = content, content  # instead of the default subject and text
    body["customer"] = {**body["customer"], "email": f"ada+{reference}@example.com"}
    return body


def _run_all(saga, bodies):
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(saga.run, bodies))


def _ses_messages():
    from moto.ses.models import ses_backends

    from tidings_local.stack.template import ACCOUNT_ID, REGION

    return list(ses_backends[ACCOUNT_ID][REGION].sent_messages)


def test_a_templated_receipt_in_two_locales_through_sendgrid_and_through_the_ses_fallback(system, saga):
    # Given the catalogue published to SendGrid as its dynamic templates (the boot did, the reset forgot)
    sendgrid = system.sandboxes["sendgrid"].control
    publish_templates(sendgrid)
    catalog = get_catalog()

    # When a French and an English receipt go through SendGrid
    through_sendgrid = [_templated("fr-FR"), _templated("en")]
    results = _run_all(saga, through_sendgrid)
    # Then SendGrid rendered its dynamic template of each locale: the receipt Tidings renders itself
    assert [r["status"] for r in results] == ["delivered", "delivered"]
    mails = {m["recipients"][0]: m for m in sendgrid.state()["mails"]}
    texts = [m["body"] for m in system.sandboxes["twilio"].control.state()["messages"]]
    for body, locale in zip(through_sendgrid, ("fr", "en"), strict=True):
        ours = catalog.render_email("order_receipt", body["receipt"]["dynamic_template_data"], locale)
        mail = mails[body["customer"]["email"]]
        assert mail["template_id"] == ours.sendgrid_template_id
        assert mail["content"] == {}  # SendGrid got the template and the data, not Tidings' rendering
        [rendered] = mail["rendered"]
        assert (rendered["subject"], rendered["html"]) == (ours.subject, ours.html)
        assert "Tea &amp; biscuits" in rendered["html"]
    french_reference = through_sendgrid[0]["order_reference"]
    assert f"Commande {french_reference} payée (£25.99). Merci, Ada !" in texts

    # When SendGrid is down and the same two locales fall back to SES
    sendgrid.inject_fault("outage", path_prefix="/v3/mail/send")
    through_ses = [_templated("fr"), _templated("en-GB")]
    seen = len(_ses_messages())
    results = _run_all(saga, through_ses)
    # Then SES sent the same receipt, rendered by Tidings from the same source
    assert [r["status"] for r in results] == ["delivered_with_fallback"] * 2
    assert {r["channels"]["email"]["provider"] for r in results} == {"ses"}
    sent = {str(m.destinations["ToAddresses"][0]): m for m in _ses_messages()[seen:]}
    for body, locale in zip(through_ses, ("fr", "en"), strict=True):
        ours = catalog.render_email("order_receipt", body["receipt"]["dynamic_template_data"], locale)
        [message] = [m for to, m in sent.items() if body["customer"]["email"] in to]
        assert (message.subject, message.body) == (ours.subject, ours.html)
    assert sent  # and nothing of it in the answers
    assert all("Ada" not in str(r["timeline"]) for r in results)


def test_a_template_whose_data_does_not_fit_is_refused_before_any_charge(system, saga):
    # Given a receipt naming the template with a field missing and one mistyped
    body = _templated("fr")
    data = body["receipt"]["dynamic_template_data"]
    del data["total"]
    data["items"][0]["quantity"] = "two"
    missing = _templated("en")
    missing["receipt"] = {**missing["receipt"], "template_id": "no_such_template"}
    # When they are sent
    refused, not_found = saga.notify(body), saga.notify(missing)
    # Then each is a 422 naming where and why, without the data, and Stripe was never called
    assert refused.status_code == 422
    assert refused.json()["code"] == "template_data_invalid"
    assert {tuple(e["loc"]) for e in refused.json()["errors"]} == {
        ("body", "receipt", "dynamic_template_data", "total"),
        ("body", "receipt", "dynamic_template_data", "items", 0, "quantity"),
    }
    assert not_found.status_code == 422
    assert not_found.json()["code"] == "template_not_found"
    assert "Ada" not in refused.text + not_found.text
    assert system.sandboxes["stripe"].control.requests("/v1/payment_intents") == []
