"""The key-management endpoints credential rotation uses: Twilio's Keys resource and SendGrid's API keys."""

from __future__ import annotations

import re

import httpx
import pytest
from support.sandboxes import TWILIO_MESSAGES

from tidings_local.sandboxes import credentials

pytestmark = pytest.mark.integration

ACCOUNT = f"/2010-04-01/Accounts/{credentials.TWILIO_ACCOUNT_SID}"
MAIL = {
    "personalizations": [{"to": [{"email": "customer@example.com"}]}],
    "from": {"email": "receipts@shop.example"},
    "subject": "Receipt",
    "content": [{"type": "text/plain", "value": "Thanks"}],
}


def twilio_as(twilio, username: str, password: str) -> httpx.Client:
    return httpx.Client(base_url=twilio.base_url, auth=(username, password), trust_env=False, timeout=5.0)


def sendgrid_as(sendgrid, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=sendgrid.base_url, headers={"Authorization": f"Bearer {key}"}, trust_env=False, timeout=5.0
    )


# --- Twilio ---------------------------------------------------------------------------------------


def test_twilio_new_key_authenticates_until_deleted(twilio):
    owner = twilio_as(twilio, credentials.TWILIO_ACCOUNT_SID, credentials.TWILIO_AUTH_TOKEN)
    # When the account creates a key
    created = owner.post(f"{ACCOUNT}/Keys.json", data={"FriendlyName": "tidings rotation"})
    # Then Twilio's key resource with the secret shown once
    assert created.status_code == 201
    key = created.json()
    assert re.fullmatch(r"SK[0-9a-f]{32}", key["sid"])
    assert key["secret"]
    assert key["friendly_name"] == "tidings rotation"
    assert "secret" not in owner.get(f"{ACCOUNT}/Keys/{key['sid']}.json").json()
    # and the new key sends SMS and fetches the account
    with twilio_as(twilio, key["sid"], key["secret"]) as new:
        assert new.get(f"{ACCOUNT}.json").json()["sid"] == credentials.TWILIO_ACCOUNT_SID
        sent = new.post(
            TWILIO_MESSAGES,
            data={"To": "+447700900123", "From": credentials.TWILIO_FROM_NUMBER, "Body": "hi"},
        )
        assert sent.status_code == 201
        # When the key is deleted
        assert owner.delete(f"{ACCOUNT}/Keys/{key['sid']}.json").status_code == 204
        # Then it is refused, and deleting it again is 404
        refused = new.get(f"{ACCOUNT}.json")
        assert refused.status_code == 401
        assert refused.json()["code"] == 20003
    assert owner.delete(f"{ACCOUNT}/Keys/{key['sid']}.json").json()["code"] == 20404


def test_twilio_standard_key_cannot_manage_keys(twilio):
    # Given the documented standard API key
    with twilio_as(twilio, credentials.TWILIO_API_KEY_SID, credentials.TWILIO_API_KEY_SECRET) as standard:
        # Then it can read the account but not create keys
        assert standard.get(f"{ACCOUNT}.json").status_code == 200
        refused = standard.post(f"{ACCOUNT}/Keys.json", data={"FriendlyName": "x"})
    assert refused.status_code == 401
    assert refused.json()["code"] == 20003


def test_twilio_keys_are_listed_without_secrets(twilio):
    owner = twilio_as(twilio, credentials.TWILIO_ACCOUNT_SID, credentials.TWILIO_AUTH_TOKEN)
    sid = owner.post(f"{ACCOUNT}/Keys.json", data={"FriendlyName": "k"}).json()["sid"]
    listed = owner.get(f"{ACCOUNT}/Keys.json").json()["keys"]
    assert {k["sid"] for k in listed} == {credentials.TWILIO_API_KEY_SID, sid}
    assert all("secret" not in k for k in listed)


# --- SendGrid -------------------------------------------------------------------------------------


def test_sendgrid_new_key_sends_until_deleted(sendgrid):
    admin = sendgrid_as(sendgrid, credentials.SENDGRID_API_KEY)
    # When a key is created with the scopes the rotation asks for
    created = admin.post("/v3/api_keys", json={"name": "tidings", "scopes": ["mail.send", "scopes.read"]})
    # Then SendGrid's shape: SG.<id>.<secret> and its id
    assert created.status_code == 201
    body = created.json()
    assert body["api_key"].startswith(f"SG.{body['api_key_id']}.")
    assert body["scopes"] == ["mail.send", "scopes.read"]
    with sendgrid_as(sendgrid, body["api_key"]) as new:
        assert new.post("/v3/mail/send", json=MAIL).status_code == 202
        assert new.get("/v3/scopes").json() == {"scopes": ["mail.send", "scopes.read"]}
        # a restricted key cannot create keys
        assert new.post("/v3/api_keys", json={"name": "x"}).status_code == 403
        # When the key is deleted
        assert admin.delete(f"/v3/api_keys/{body['api_key_id']}").status_code == 204
        # Then it is refused
        assert new.post("/v3/mail/send", json=MAIL).status_code == 401
    assert admin.delete(f"/v3/api_keys/{body['api_key_id']}").status_code == 404


def test_sendgrid_key_cannot_grant_scopes_it_lacks(sendgrid):
    admin = sendgrid_as(sendgrid, credentials.SENDGRID_API_KEY)
    limited = admin.post(
        "/v3/api_keys", json={"name": "l", "scopes": ["api_keys.create", "mail.send"]}
    ).json()
    with sendgrid_as(sendgrid, limited["api_key"]) as client:
        refused = client.post("/v3/api_keys", json={"name": "x", "scopes": ["api_keys.delete"]})
        allowed = client.post("/v3/api_keys", json={"name": "y", "scopes": ["mail.send"]})
    assert refused.status_code == 403
    assert allowed.status_code == 201


def test_sendgrid_restricted_key_without_mail_send_cannot_send(sendgrid):
    admin = sendgrid_as(sendgrid, credentials.SENDGRID_API_KEY)
    key = admin.post("/v3/api_keys", json={"name": "r", "scopes": ["scopes.read"]}).json()["api_key"]
    with sendgrid_as(sendgrid, key) as client:
        assert client.post("/v3/mail/send", json=MAIL).status_code == 403
