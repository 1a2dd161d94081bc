"""The four rotation steps, each one re-run, and the failures that must leave AWSCURRENT alone."""

from __future__ import annotations

import json

import httpx
import pytest
from support.rotation import stages, value

from tidings import errors
from tidings.rotation.protocol import STEPS, RotationStateError
from tidings.webhooks.keys import accepted_keys
from tidings_local.sandboxes import credentials

pytestmark = pytest.mark.unit

ACCOUNT = f"/2010-04-01/Accounts/{credentials.TWILIO_ACCOUNT_SID}"
MAIL = {
    "personalizations": [{"to": [{"email": "customer@example.com"}]}],
    "from": {"email": "receipts@shop.example"},
    "subject": "Receipt",
    "content": [{"type": "text/plain", "value": "Thanks"}],
}


def rotate(rotator, aws, provider, token, steps=STEPS):
    arn = aws["arns"][provider]
    for step in steps:
        rotator.run(arn, token, step)


def twilio_status(sandbox, sid: str, secret: str) -> int:
    with httpx.Client(base_url=sandbox["twilio"].base_url, auth=(sid, secret), trust_env=False) as http:
        return http.get(f"{ACCOUNT}.json").status_code


def sendgrid_status(sandbox, key: str) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=sandbox["sendgrid"].base_url, headers=headers, trust_env=False) as http:
        return http.post("/v3/mail/send", json=MAIL).status_code


def current_version(aws, provider) -> str:
    return next(v for v, labels in stages(aws, provider).items() if "AWSCURRENT" in labels)


# --- Twilio ---------------------------------------------------------------------------------------


def test_create_secret_stores_a_new_twilio_key_as_pending_and_leaves_current(
    rotator, aws, sandbox, start_rotation
):
    # Given a rotation has started
    token = start_rotation("twilio")
    # When createSecret runs
    rotator().run(aws["arns"]["twilio"], token, "createSecret")
    # Then the pending version holds a new key Twilio knows, and everything else is carried over
    pending = value(aws, "twilio", VersionId=token, VersionStage="AWSPENDING")
    assert pending["api_key_sid"] != credentials.TWILIO_API_KEY_SID
    assert pending["auth_token"] == credentials.TWILIO_AUTH_TOKEN
    assert pending["from_number"] == credentials.TWILIO_FROM_NUMBER
    assert twilio_status(sandbox, pending["api_key_sid"], pending["api_key_secret"]) == 200
    # and AWSCURRENT still holds the old key
    assert value(aws, "twilio")["api_key_sid"] == credentials.TWILIO_API_KEY_SID


def test_create_secret_run_twice_makes_one_key(rotator, aws, sandbox, start_rotation):
    token = start_rotation("twilio")
    rotation = rotator()
    rotation.run(aws["arns"]["twilio"], token, "createSecret")
    first = value(aws, "twilio", VersionId=token)
    # When Secrets Manager retries createSecret
    rotation.run(aws["arns"]["twilio"], token, "createSecret")
    # Then no second key was made and the pending value is unchanged
    assert len(sandbox["twilio"].control.requests(f"{ACCOUNT}/Keys.json")) == 1
    assert value(aws, "twilio", VersionId=token) == first


def test_full_twilio_rotation_makes_new_key_current_and_deletes_the_old(
    rotator, aws, sandbox, start_rotation
):
    token = start_rotation("twilio")
    old_version = current_version(aws, "twilio")
    # When all four steps run
    rotate(rotator(), aws, "twilio", token)
    # Then the new version is current and the old one previous
    assert "AWSCURRENT" in stages(aws, "twilio")[token]
    assert "AWSPREVIOUS" in stages(aws, "twilio")[old_version]
    current = value(aws, "twilio")
    # and Twilio accepts the new key and refuses the deleted old one
    assert twilio_status(sandbox, current["api_key_sid"], current["api_key_secret"]) == 200
    assert twilio_status(sandbox, credentials.TWILIO_API_KEY_SID, credentials.TWILIO_API_KEY_SECRET) == 401


def test_finish_secret_run_again_changes_nothing(rotator, aws, sandbox, start_rotation):
    token = start_rotation("twilio")
    rotation = rotator()
    rotate(rotation, aws, "twilio", token)
    before = stages(aws, "twilio")
    # When finishSecret is retried
    rotation.run(aws["arns"]["twilio"], token, "finishSecret")
    # Then the labels are as they were and the old key stays deleted (the repeat DELETE found it gone)
    assert stages(aws, "twilio") == before
    deletes = [r for r in sandbox["twilio"].control.requests(f"{ACCOUNT}/Keys/") if r["method"] == "DELETE"]
    assert [r["status"] for r in deletes] == [204, 404]


def test_set_and_test_secret_can_run_again(rotator, aws, sandbox, start_rotation):
    token = start_rotation("twilio")
    rotation = rotator()
    rotate(
        rotation,
        aws,
        "twilio",
        token,
        steps=("createSecret", "setSecret", "setSecret", "testSecret", "testSecret"),
    )
    # Then the account was fetched with the new key each time, and nothing is current yet
    fetches = sandbox["twilio"].control.requests(f"{ACCOUNT}.json")
    assert [r["status"] for r in fetches] == [200, 200]
    assert value(aws, "twilio")["api_key_sid"] == credentials.TWILIO_API_KEY_SID


def test_failed_test_secret_leaves_current_untouched_and_old_key_working(
    rotator, aws, sandbox, start_rotation
):
    token = start_rotation("twilio")
    rotation = rotator()
    rotate(rotation, aws, "twilio", token, steps=("createSecret", "setSecret"))
    # Given Twilio refuses the new key (revoked at the provider in between)
    pending = value(aws, "twilio", VersionId=token)
    with httpx.Client(
        base_url=sandbox["twilio"].base_url,
        auth=(credentials.TWILIO_ACCOUNT_SID, credentials.TWILIO_AUTH_TOKEN),
        trust_env=False,
    ) as owner:
        assert owner.delete(f"{ACCOUNT}/Keys/{pending['api_key_sid']}.json").status_code == 204
    # When testSecret runs, it fails with the typed error
    with pytest.raises(errors.AuthenticationFailed):
        rotation.run(aws["arns"]["twilio"], token, "testSecret")
    # Then AWSCURRENT is the old value, and the old key still works
    assert "AWSCURRENT" not in stages(aws, "twilio")[token]
    assert value(aws, "twilio")["api_key_sid"] == credentials.TWILIO_API_KEY_SID
    assert twilio_status(sandbox, credentials.TWILIO_API_KEY_SID, credentials.TWILIO_API_KEY_SECRET) == 200


def test_provider_outage_during_create_is_a_transient_error_and_stores_nothing(
    rotator, aws, sandbox, start_rotation
):
    token = start_rotation("twilio")
    sandbox["twilio"].control.inject_fault("status", status=503, count=1, path_prefix=f"{ACCOUNT}/Keys")
    with pytest.raises(errors.ProviderUnavailable):
        rotator().run(aws["arns"]["twilio"], token, "createSecret")
    with pytest.raises(aws["client"].exceptions.ResourceNotFoundException):
        aws["client"].get_secret_value(SecretId=aws["arns"]["twilio"], VersionId=token)


def test_twilio_secret_without_auth_token_cannot_rotate(rotator, aws, sandbox, start_rotation):
    current = value(aws, "twilio")
    del current["auth_token"]
    aws["client"].put_secret_value(SecretId=aws["arns"]["twilio"], SecretString=json.dumps(current))
    token = start_rotation("twilio")
    with pytest.raises(errors.AuthenticationFailed, match="auth_token"):
        rotator().run(aws["arns"]["twilio"], token, "createSecret")
    assert sandbox["twilio"].control.requests(f"{ACCOUNT}/Keys.json") == []


# --- SendGrid -------------------------------------------------------------------------------------


def test_full_sendgrid_rotation_new_key_sends_and_old_is_refused(rotator, aws, sandbox, start_rotation):
    token = start_rotation("sendgrid")
    rotate(rotator(), aws, "sendgrid", token)
    current = value(aws, "sendgrid")
    assert current["api_key"] != credentials.SENDGRID_API_KEY
    assert current["api_key"].startswith(f"SG.{current['api_key_id']}.")
    assert sendgrid_status(sandbox, current["api_key"]) == 202
    assert sendgrid_status(sandbox, credentials.SENDGRID_API_KEY) == 401


def test_sendgrid_key_made_by_a_rotation_can_make_the_next_one(rotator, aws, sandbox, start_rotation):
    rotation = rotator()
    rotate(rotation, aws, "sendgrid", start_rotation("sendgrid"))
    second_generation = value(aws, "sendgrid")
    # When the secret is rotated again, with the key the first rotation made
    rotate(rotation, aws, "sendgrid", start_rotation("sendgrid"))
    # Then a third key is current and the second is deleted
    current = value(aws, "sendgrid")
    assert current["api_key"] not in (second_generation["api_key"], credentials.SENDGRID_API_KEY)
    assert sendgrid_status(sandbox, current["api_key"]) == 202
    assert sendgrid_status(sandbox, second_generation["api_key"]) == 401


def test_sendgrid_key_without_mail_send_fails_test_secret(rotator, aws, sandbox, start_rotation):
    token = start_rotation("sendgrid")
    rotation = rotator(SENDGRID_API_KEY_SCOPES="scopes.read")
    rotation.run(aws["arns"]["sendgrid"], token, "createSecret")
    with pytest.raises(errors.AuthenticationFailed, match=r"mail\.send"):
        rotation.run(aws["arns"]["sendgrid"], token, "testSecret")
    assert value(aws, "sendgrid")["api_key"] == credentials.SENDGRID_API_KEY


# --- Stripe and webhook key rolls -----------------------------------------------------------------


def test_stripe_rotation_keeps_api_key_and_by_default_the_webhook_secret(rotator, aws, start_rotation):
    token = start_rotation("stripe")
    rotate(rotator(), aws, "stripe", token)
    assert "AWSCURRENT" in stages(aws, "stripe")[token]
    assert value(aws, "stripe") == {"api_key": credentials.STRIPE_API_KEY}
    # The signing key lives in its own secret, which a default rotation carries over as it is
    signing = start_rotation("stripe-signing")
    rotate(rotator(), aws, "stripe-signing", signing)
    assert "AWSCURRENT" in stages(aws, "stripe-signing")[signing]
    assert value(aws, "stripe-signing") == {"webhook_secret": credentials.STRIPE_WEBHOOK_SECRET}


def test_stripe_webhook_secret_roll_keeps_the_old_one_valid_for_the_grace_period(
    rotator, aws, clock, start_rotation
):
    token = start_rotation("stripe-signing")
    rotation = rotator(ROTATION_ROLL_STRIPE_WEBHOOK_SECRET="true", ROTATION_WEBHOOK_GRACE_SECONDS="900")
    rotate(rotation, aws, "stripe-signing", token)
    current = value(aws, "stripe-signing")
    # Then a new signing secret, the old one kept as previous until now + 900 s
    rotate(rotation, aws, "stripe", start_rotation("stripe"))
    assert value(aws, "stripe")["api_key"] == credentials.STRIPE_API_KEY
    assert current["webhook_secret"].startswith("whsec_")
    assert current["webhook_secret"] != credentials.STRIPE_WEBHOOK_SECRET
    assert current["previous_webhook_secret"] == credentials.STRIPE_WEBHOOK_SECRET
    assert current["previous_valid_until"] == int(clock.now) + 900
    # and the webhook verifiers accept both until then, and only the new one after
    both = accepted_keys(current, "webhook_secret", now=clock.now + 899)
    assert both == [current["webhook_secret"], credentials.STRIPE_WEBHOOK_SECRET]
    assert accepted_keys(current, "webhook_secret", now=clock.now + 900) == [current["webhook_secret"]]


def test_a_rotation_drops_a_roll_whose_window_has_ended(rotator, aws, sandbox, clock, start_rotation):
    # Given an earlier roll of Twilio's auth token that ended an hour ago
    secret = value(aws, "twilio")
    secret |= {"previous_auth_token": "tidings-old-auth-token", "previous_valid_until": int(clock.now) - 3600}
    aws["client"].put_secret_value(SecretId=aws["arns"]["twilio"], SecretString=json.dumps(secret))
    # When the secret is rotated
    rotate(rotator(), aws, "twilio", start_rotation("twilio"))
    # Then the ended window is gone, the current auth token stays
    current = value(aws, "twilio")
    assert "previous_auth_token" not in current
    assert "previous_valid_until" not in current
    assert current["auth_token"] == credentials.TWILIO_AUTH_TOKEN


def test_a_rotation_keeps_a_roll_still_in_its_window(rotator, aws, clock, start_rotation):
    secret = value(aws, "stripe-signing")
    secret |= {"previous_webhook_secret": "whsec_older", "previous_valid_until": int(clock.now) + 60}
    aws["client"].put_secret_value(SecretId=aws["arns"]["stripe-signing"], SecretString=json.dumps(secret))
    rotate(rotator(), aws, "stripe-signing", start_rotation("stripe-signing"))
    assert value(aws, "stripe-signing")["previous_webhook_secret"] == "whsec_older"


def test_a_stripe_signing_secret_without_a_whsec_key_fails_its_test_step(rotator, aws, start_rotation):
    aws["client"].put_secret_value(SecretId=aws["arns"]["stripe-signing"], SecretString=json.dumps({}))
    token = start_rotation("stripe-signing")
    rotation = rotator()
    rotate(rotation, aws, "stripe-signing", token, steps=("createSecret", "setSecret"))
    with pytest.raises(errors.AuthenticationFailed):
        rotation.run(aws["arns"]["stripe-signing"], token, "testSecret")
    assert "AWSCURRENT" not in stages(aws, "stripe-signing")[token]


# --- protocol checks ------------------------------------------------------------------------------


def test_a_token_that_is_not_a_version_of_the_secret_is_refused(rotator, aws, sandbox):
    with pytest.raises(RotationStateError, match="not being rotated"):
        rotator().run(aws["arns"]["twilio"], "11111111-1111-4111-8111-111111111111", "createSecret")
    assert sandbox["twilio"].control.requests() == []


def test_a_secret_this_function_does_not_rotate_is_refused(rotator, aws, sandbox):
    other = aws["client"].create_secret(Name="someone-elses", SecretString="{}")
    with pytest.raises(RotationStateError, match="not a secret this function rotates"):
        rotator().run(other["ARN"], other["VersionId"], "createSecret")


def test_steps_after_finish_do_nothing(rotator, aws, sandbox, start_rotation):
    token = start_rotation("twilio")
    rotation = rotator()
    rotate(rotation, aws, "twilio", token)
    before = value(aws, "twilio")
    sandbox["twilio"].control.clear_requests()
    # When createSecret, setSecret and testSecret arrive again for the finished version
    rotate(rotation, aws, "twilio", token, steps=("createSecret", "setSecret", "testSecret"))
    # Then nothing is asked of Twilio and nothing changes
    assert sandbox["twilio"].control.requests() == []
    assert value(aws, "twilio") == before


class _AppendOnlyTable:
    """A fake audit table: what put_item was given, refusing a second put of one key as DynamoDB would."""

    def __init__(self) -> None:
        self.items: list[dict] = []

    def put_item(self, Item, ConditionExpression):  # noqa: N803 - boto3's argument names
        assert ConditionExpression == "attribute_not_exists(pk)"
        assert all((i["pk"], i["sk"]) != (Item["pk"], Item["sk"]) for i in self.items)
        self.items.append(Item)


def test_every_rotation_step_leaves_an_audit_record_failed_ones_too(rotator, aws, sandbox, start_rotation):
    from tidings.audit import AuditLog

    table = _AppendOnlyTable()
    rotation = rotator()
    rotation.audit = AuditLog(lambda: table)
    token = start_rotation("twilio")
    # Given a full rotation, then a createSecret that the provider refuses
    rotate(rotation, aws, "twilio", token)
    failing = start_rotation("twilio")
    sandbox["twilio"].control.inject_fault("status", status=503, count=1, path_prefix=f"{ACCOUNT}/Keys")
    with pytest.raises(errors.ProviderUnavailable):
        rotation.run(aws["arns"]["twilio"], failing, "createSecret")
    # Then one record per step, by the rotation itself, naming the secret and never a value
    assert [(i["action"], i["outcome"]) for i in table.items] == [
        ("rotation.createSecret", "ok"),
        ("rotation.setSecret", "ok"),
        ("rotation.testSecret", "ok"),
        ("rotation.finishSecret", "ok"),
        ("rotation.createSecret", "failed"),
    ]
    assert {i["subject"] for i in table.items} == {"system:rotation"}
    assert {i["target_kind"] for i in table.items} == {"secret"}
    assert table.items[-1]["details"] == {"error_type": "ProviderUnavailable"}
    stored = str(table.items)
    current = value(aws, "twilio")
    assert current["api_key_secret"] not in stored
    assert current["auth_token"] not in stored
