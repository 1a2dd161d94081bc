"""The SendGrid sandbox keeps dynamic templates and renders a mail sent with one."""

from __future__ import annotations

import pytest
from support.sandboxes import sendgrid_mail

from tidings.templates.catalog import example_data, get_catalog
from tidings.templates.handlebars import sendgrid_versions

pytestmark = pytest.mark.integration


def _templated(template_id: str, data: dict) -> dict:
    mail = sendgrid_mail("ada@example.com", template_id=template_id)
    mail["personalizations"][0]["dynamic_template_data"] = data
    del mail["subject"], mail["content"]
    return mail


def test_a_dynamic_template_made_through_the_api_renders_the_mail(sendgrid, sendgrid_http):
    # Given a dynamic template with an active version
    created = sendgrid_http.post("/v3/templates", json={"name": "receipt", "generation": "dynamic"})
    assert created.status_code == 201
    template_id = created.json()["id"]
    assert template_id.startswith("d-")
    assert len(template_id) == 34
    version = {
        "name": "v1",
        "subject": "Receipt {{{order}}}",
        "html_content": "<p>Hi {{name}}</p>\n{{#each items}}<p>{{this.n}} x {{@root.unit}}</p>\n{{/each}}",
        "generate_plain_content": True,
        "active": 1,
    }
    assert sendgrid_http.post(f"/v3/templates/{template_id}/versions", json=version).status_code == 201
    fetched = sendgrid_http.get(f"/v3/templates/{template_id}").json()
    assert [v["active"] for v in fetched["versions"]] == [1]
    # When a mail names it with its data
    data = {"order": "o-1 & co", "name": "<Ada>", "unit": "tea", "items": [{"n": 2}, {"n": 3}]}
    response = sendgrid_http.post("/v3/mail/send", json=_templated(template_id, data))
    # Then it is accepted and rendered: HTML escaped as Handlebars escapes, the subject raw
    assert response.status_code == 202, response.text
    mail = sendgrid.control.state()["mails"][0]
    assert mail["template_id"] == template_id
    assert mail["rendered"] == [
        {
            "subject": "Receipt o-1 & co",
            "html": "<p>Hi &lt;Ada&gt;</p>\n<p>2 x tea</p>\n<p>3 x tea</p>\n",
            "text": "Hi <Ada>\n\n2 x tea\n\n3 x tea",
        }
    ]


def test_an_unknown_template_is_refused_with_sendgrids_400(sendgrid, sendgrid_http):
    response = sendgrid_http.post("/v3/mail/send", json=_templated("d-" + "0" * 32, {}))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "template_id"
    assert sendgrid.control.state()["mails"] == []


def test_the_catalogue_published_renders_what_tidings_renders_for_ses(sendgrid, sendgrid_http):
    # Given the catalogue's templates stored under their SendGrid ids
    catalog = get_catalog()
    for sendgrid_id, published in sendgrid_versions(catalog).items():
        sendgrid.control.put_template(sendgrid_id, published)
    template = catalog.get("order_receipt")
    data = example_data(template)
    for locale in ("en", "fr"):
        ours = catalog.render_email("order_receipt", data, locale)
        # When a mail names the locale's SendGrid template
        assert ours.sendgrid_template_id is not None
        response = sendgrid_http.post("/v3/mail/send", json=_templated(ours.sendgrid_template_id, data))
        assert response.status_code == 202, response.text
        # Then SendGrid's rendering is the receipt Tidings renders for SES
        rendered = sendgrid.control.state()["mails"][-1]["rendered"][0]
        assert (rendered["subject"], rendered["html"]) == (ours.subject, ours.html)
        assert ours.text.split() == rendered["text"].split()
