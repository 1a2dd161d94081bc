"""The SendGrid sandbox answers like api.sendgrid.com's v3 mail/send."""

from __future__ import annotations

import re

import httpx
import pytest
from support.sandboxes import sendgrid_mail

pytestmark = pytest.mark.integration


def test_accepted_mail_is_202_with_empty_body_and_a_message_id(sendgrid, sendgrid_http):
    # When a valid mail is sent
    response = sendgrid_http.post("/v3/mail/send", json=sendgrid_mail(custom_args={"notification_id": "n-1"}))
    # Then 202, no body, an X-Message-Id, and the rate-limit headers
    assert response.status_code == 202
    assert response.content == b""
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", response.headers["X-Message-Id"])
    assert int(response.headers["X-RateLimit-Remaining"]) <= int(response.headers["X-RateLimit-Limit"])
    mail = sendgrid.control.state()["mails"][0]
    assert mail["message_id"] == response.headers["X-Message-Id"]
    assert mail["custom_args"] == {"notification_id": "n-1"}


def test_missing_key_and_wrong_key_get_sendgrids_401_bodies(sendgrid):
    missing = httpx.post(f"{sendgrid.base_url}/v3/mail/send", json=sendgrid_mail(), trust_env=False)
    assert missing.status_code == 401
    assert missing.json() == {"errors": [{"field": None, "message": "authorization required"}]}

    wrong = httpx.post(
        f"{sendgrid.base_url}/v3/mail/send",
        json=sendgrid_mail(),
        headers={"Authorization": "Bearer SG.wrong"},
        trust_env=False,
    )
    assert wrong.status_code == 401
    assert wrong.json() == {
        "errors": [
            {"field": None, "message": "The provided authorization grant is invalid, expired, or revoked"}
        ]
    }
    assert "X-RateLimit-Limit" in wrong.headers
    assert sendgrid.control.state()["mails"] == []


@pytest.mark.parametrize(
    ("change", "field", "message_start"),
    [
        ({"from": None}, "from.email", "The from object must be provided for every email send."),
        ({"from": {"email": "nope"}}, "from.email", "The from email does not contain a valid address."),
        ({"personalizations": []}, "personalizations", "The personalizations field is required"),
        (
            {"personalizations": [{"to": [{"email": "not-an-address"}]}]},
            "personalizations.0.to.0.email",
            "Does not contain a valid address.",
        ),
        ({"personalizations": [{}]}, "personalizations.0.to", "The to array is required"),
        ({"subject": None}, "subject", "The subject is required."),
        (
            {"content": []},
            "content",
            "Unless a valid template_id is provided, the content parameter is required.",
        ),
        (
            {"content": [{"type": "text/plain", "value": ""}]},
            "content.0.value",
            "The content value must be a string at least one character in length.",
        ),
        (
            {"content": [{"type": "text/html", "value": "<p/>"}, {"type": "text/plain", "value": "x"}]},
            "content",
            "If present, text/plain content must be first",
        ),
        (
            {"custom_args": {"order": 7}},
            "custom_args.order",
            "Invalid type. Expected: string, given: integer.",
        ),
    ],
)
def test_validation_errors_name_the_field_like_sendgrid(
    sendgrid, sendgrid_http, change, field, message_start
):
    body = {k: v for k, v in {**sendgrid_mail(), **change}.items() if v is not None}
    response = sendgrid_http.post("/v3/mail/send", json=body)
    assert response.status_code == 400
    errors = response.json()["errors"]
    matching = [e for e in errors if e["field"] == field]
    assert matching, errors
    assert matching[0]["message"].startswith(message_start)
    # only the properties SendGrid's description gives an error item (its "help" is typed an object)
    assert set(matching[0]) == {"field", "message"}
    assert sendgrid.control.state()["mails"] == []


def test_every_error_is_reported_at_once(sendgrid_http):
    response = sendgrid_http.post("/v3/mail/send", json={"personalizations": [{"to": [{"email": "x"}]}]})
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"personalizations.0.to.0.email", "from.email", "subject", "content"} <= fields


def test_body_that_is_not_json_is_bad_request(sendgrid_http):
    response = sendgrid_http.post(
        "/v3/mail/send", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {"errors": [{"field": None, "message": "Bad Request"}]}


def test_body_over_30_mb_is_413(sendgrid, sendgrid_http):
    # Given a mail whose body exceeds SendGrid's 30 MB limit
    big = sendgrid_mail(content=[{"type": "text/plain", "value": "x" * (30 * 1024 * 1024 + 1)}])
    # Then 413, nothing accepted, and the request log keeps the size, not the whole body
    response = sendgrid_http.post("/v3/mail/send", json=big)
    assert response.status_code == 413
    assert "errors" in response.json()
    assert sendgrid.control.state()["mails"] == []
    record = sendgrid.control.requests("/v3/mail/send")[0]
    assert record["body_size"] > 30 * 1024 * 1024
    assert len(record["body"]) < 2_000_000


def test_sandbox_mode_validates_but_does_not_send(sendgrid, sendgrid_http):
    body = sendgrid_mail(mail_settings={"sandbox_mode": {"enable": True}})
    response = sendgrid_http.post("/v3/mail/send", json=body)
    assert response.status_code == 200
    assert sendgrid.control.state()["mails"] == []


def test_unknown_path_is_404(sendgrid_http):
    response = sendgrid_http.get("/v3/templates")
    assert response.status_code == 404
    assert response.json()["errors"][0]["message"] == "resource not found"
