"""From a freshly deployed stack to one that delivers, with the operator's own commands (docs/deploy.md).

On the session's local system (tests/e2e/conftest.py): its provider secrets are emptied as a fresh deploy
leaves them, then ``tidings secrets set`` (credentials read from stdin, checked against the sandboxes),
``tidings webhooks register`` (endpoints created at the sandboxes through their APIs) and ``tidings
doctor`` take it to a stack whose notification is delivered with the providers' webhooks arriving through
the endpoints just registered. Then ``doctor`` names each thing a test breaks on purpose.

The commands run through ``tidings_ops.cli.main`` as a person runs them, against ``--local`` (the
``.local-state/endpoints.json`` the local system writes, in a directory of the test's own). Everything
changed is put back afterwards: the secrets the other tests rely on, the sandboxes' registrations.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from support.e2e import api_post, order_body

from tidings_local.sandboxes import credentials
from tidings_local.stack import cli as local_cli
from tidings_ops import cli

pytestmark = pytest.mark.e2e

PROVIDERS = ("stripe", "sendgrid", "twilio")
#: The stack's secrets by the name credentials.provider_secret_values() gives them.
SECRETS = {
    "stripe": "StripeSecret",
    "sendgrid": "SendGridSecret",
    "twilio": "TwilioSecret",
    "stripe-signing": "StripeSigningSecret",
    "sendgrid-signing": "SendGridSigningSecret",
    "twilio-signing": "TwilioSigningSecret",
}
STDIN = {
    "stripe": json.dumps({"api_key": credentials.STRIPE_API_KEY}),
    "sendgrid": credentials.SENDGRID_API_KEY + "\n",
    "twilio": f"{credentials.TWILIO_API_KEY_SECRET}\n{credentials.TWILIO_AUTH_TOKEN}\n",
}
CREDENTIALS = {
    "stripe": [credentials.STRIPE_API_KEY],
    "sendgrid": [credentials.SENDGRID_API_KEY],
    "twilio": [credentials.TWILIO_API_KEY_SECRET, credentials.TWILIO_AUTH_TOKEN],
}
TWILIO_OPTIONS = [
    "--account-sid",
    credentials.TWILIO_ACCOUNT_SID,
    "--api-key-sid",
    credentials.TWILIO_API_KEY_SID,
    "--from-number",
    credentials.TWILIO_FROM_NUMBER,
]
ON_CALL = "oncall@example.com"


class Operator:
    """``tidings ...`` in a directory holding the local system's endpoints file."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        self.monkeypatch = monkeypatch
        self.capsys = capsys

    def run(self, *argv: str, stdin: str = "") -> tuple[int, str, str]:
        self.capsys.readouterr()
        self.monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = cli.main([*argv, "--local"])
        out, err = self.capsys.readouterr()
        return code, out, err

    def doctor(self) -> tuple[int, dict[str, str]]:
        code, out, err = self.run("doctor", "--json")
        assert out, err
        return code, {c["check"]: c["status"] for c in json.loads(out)["checks"]}


def secret_values(system: Any, provider: str) -> dict[str, Any]:
    arn = system.physical_id(SECRETS[provider])
    return json.loads(system.boto3_client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])


def put_secret(system: Any, provider: str, value: dict[str, Any]) -> None:
    arn = system.physical_id(SECRETS[provider])
    system.boto3_client("secretsmanager").put_secret_value(SecretId=arn, SecretString=json.dumps(value))


def alarm_topic(system: Any) -> str:
    return system.outputs["AlarmTopicArn"]


@pytest.fixture
def operator(system, tmp_path, monkeypatch, capsys) -> Iterator[Operator]:
    """The operator's shell, and a clean slate after: secrets, sandboxes and subscriptions as they were."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".local-state").mkdir()
    local_cli._write_endpoints(system)
    # A signing key the commands store must be read at once by the receiver, not after its cache expires
    # (a freshly deployed receiver has nothing cached; this one served the tests before).
    receiver = system.runtime.pool("WebhookReceiverFunction").spec.environment
    if receiver.get("WEBHOOK_SECRET_CACHE_SECONDS") != "0":
        system.set_function_env("WebhookReceiverFunction", {"WEBHOOK_SECRET_CACHE_SECONDS": "0"})
        # Cold-start one container per provider now (each answers a refusal: only warming them), so the
        # sandboxes' first deliveries are not the ones that wait for a start.
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda p: api_post(f"{system.api_url}/webhooks/{p}", content=b"{}"), PROVIDERS))
    for sandbox in system.sandboxes.values():
        sandbox.control.reset()
    yield Operator(monkeypatch, capsys)
    for provider, value in credentials.provider_secret_values().items():
        put_secret(system, provider, value)
    for sandbox in system.sandboxes.values():
        sandbox.control.reset()
    sns = system.boto3_client("sns")
    for subscription in sns.list_subscriptions_by_topic(TopicArn=alarm_topic(system))["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])


def test_a_fresh_stack_is_taken_to_one_that_delivers(system, operator, saga):
    # Given a stack as a fresh deploy leaves it: no provider credentials, nobody hears its alarms
    for provider in SECRETS:
        put_secret(system, provider, {})
    code, checks = operator.doctor()
    assert code == 1
    assert {
        name: checks[name] for name in ("secret stripe", "secret sendgrid", "secret twilio", "alarms")
    } == {
        "secret stripe": "fail",
        "secret sendgrid": "fail",
        "secret twilio": "fail",
        "alarms": "fail",
    }

    # When the operator stores each provider's credentials, registers the webhooks, subscribes to the alarms
    for provider in PROVIDERS:
        options = TWILIO_OPTIONS if provider == "twilio" else []
        code, out, err = operator.run("secrets", "set", provider, *options, stdin=STDIN[provider])
        assert code == 0, err
        for value in CREDENTIALS[provider]:
            assert value not in out + err  # never echoed
    code, out, err = operator.run("webhooks", "register", "--json")
    assert code == 0, err
    registered = {row["provider"]: row for row in json.loads(out)}
    system.boto3_client("sns").subscribe(TopicArn=alarm_topic(system), Protocol="email", Endpoint=ON_CALL)

    # Then the doctor finds nothing to fix
    code, checks = operator.doctor()
    assert code == 0, checks
    assert {status for status in checks.values()} <= {"ok", "warn"}
    assert checks["webhook stripe"] == checks["webhook sendgrid"] == checks["webhook twilio"] == "ok"
    code, table, _ = operator.run("doctor")
    assert code == 0
    assert "ready to deliver" in table

    # And the signing keys the providers answered are the stack's now
    stripe_state = system.sandboxes["stripe"].control.state()
    (endpoint,) = stripe_state["webhook_endpoints"]
    assert endpoint["url"] == registered["stripe"]["url"] == f"{system.api_url}/webhooks/stripe"
    assert secret_values(system, "stripe-signing")["webhook_secret"] != credentials.STRIPE_WEBHOOK_SECRET
    sendgrid_state = system.sandboxes["sendgrid"].control.state()
    assert (
        secret_values(system, "sendgrid-signing")["webhook_public_key"]
        == (sendgrid_state["event_webhooks"][0]["public_key"])
    )

    # And a notification is delivered, its webhooks verified with those keys
    final = saga.run(order_body())
    assert final["status"] == "delivered", final["status"]
    final = saga.wait_for_channel(final["notification_id"], "email", {"delivered"})
    assert final["channels"]["email"]["status"] == "delivered"
    deliveries = system.sandboxes["stripe"].control.webhook_deliveries()
    assert deliveries
    assert {d["url"] for d in deliveries} == {endpoint["url"]}
    assert all(d["delivered"] for d in deliveries)

    # And the audit log says who stored what, never a value
    operator_id = system.boto3_client("sts").get_caller_identity()["UserId"].split(":", 1)[0]
    code, out, _ = operator.run("audit", "--subject", f"iam:{operator_id}", "--since", "1h", "--json")
    actions = [r for r in json.loads(out) if r["action"] in ("secrets.set", "webhooks.register")]
    assert {(r["action"], r["target_id"]) for r in actions} >= {
        ("secrets.set", "stripe"),
        ("secrets.set", "twilio"),
        ("webhooks.register", "sendgrid"),
    }
    assert credentials.STRIPE_API_KEY not in out


def _break_secret(system: Any) -> Callable[[], None]:
    value = secret_values(system, "stripe")
    put_secret(system, "stripe", {k: v for k, v in value.items() if k != "api_key"})
    return lambda: put_secret(system, "stripe", value)


def _revoke_stripe_key(system: Any) -> Callable[[], None]:
    system.sandboxes["stripe"].control.set_credentials(api_key="sk_test_someone_else")
    return lambda: system.sandboxes["stripe"].control.set_credentials(api_key=credentials.STRIPE_API_KEY)


def _delete_stripe_endpoint(system: Any) -> Callable[[], None]:
    stripe = system.sandboxes["stripe"]
    (endpoint,) = stripe.control.state()["webhook_endpoints"]
    auth = {"Authorization": f"Bearer {credentials.STRIPE_API_KEY}"}
    httpx.delete(f"{stripe.base_url}/v1/webhook_endpoints/{endpoint['id']}", headers=auth).raise_for_status()
    return lambda: None  # the next case registers again


def _unsign_sendgrid(system: Any) -> Callable[[], None]:
    sendgrid = system.sandboxes["sendgrid"]
    auth = {"Authorization": f"Bearer {credentials.SENDGRID_API_KEY}"}
    httpx.patch(
        f"{sendgrid.base_url}/v3/user/webhooks/event/settings/signed", json={"enabled": False}, headers=auth
    ).raise_for_status()
    return lambda: None


def _forget_sendgrid_key(system: Any) -> Callable[[], None]:
    value = secret_values(system, "sendgrid-signing")
    put_secret(
        system, "sendgrid-signing", {**value, "webhook_public_key": credentials.SENDGRID_WEBHOOK_PUBLIC_KEY}
    )
    return lambda: put_secret(system, "sendgrid-signing", value)


def _repoint_twilio_number(system: Any) -> Callable[[], None]:
    twilio = system.sandboxes["twilio"]
    account = f"{twilio.base_url}/2010-04-01/Accounts/{credentials.TWILIO_ACCOUNT_SID}"
    auth = (credentials.TWILIO_API_KEY_SID, credentials.TWILIO_API_KEY_SECRET)
    (number,) = httpx.get(f"{account}/IncomingPhoneNumbers.json", auth=auth).json()["incoming_phone_numbers"]
    httpx.post(
        f"{account}/IncomingPhoneNumbers/{number['sid']}.json",
        data={"SmsUrl": "https://elsewhere.example"},
        auth=auth,
    ).raise_for_status()
    return lambda: None


def _rotate_twilio_token(system: Any) -> Callable[[], None]:
    system.sandboxes["twilio"].control.set_credentials(auth_token="a-token-the-stack-does-not-have")
    return lambda: system.sandboxes["twilio"].control.set_credentials(
        auth_token=credentials.TWILIO_AUTH_TOKEN
    )


def _unverify_sender(system: Any) -> Callable[[], None]:
    ses = system.boto3_client("ses")
    sender = system.stack.template.parameters["ReceiptFromAddress"]
    ses.delete_identity(Identity=sender)
    return lambda: ses.verify_email_identity(EmailAddress=sender)


def _unsubscribe_alarms(system: Any) -> Callable[[], None]:
    sns = system.boto3_client("sns")
    for subscription in sns.list_subscriptions_by_topic(TopicArn=alarm_topic(system))["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
    return lambda: sns.subscribe(TopicArn=alarm_topic(system), Protocol="email", Endpoint=ON_CALL)


#: (the check that must fail, how to break it), one case each.
BREAKAGES = [
    ("secret stripe", _break_secret),
    ("credentials stripe", _revoke_stripe_key),
    ("webhook stripe", _delete_stripe_endpoint),
    ("webhook sendgrid", _unsign_sendgrid),
    ("webhook sendgrid", _forget_sendgrid_key),
    ("webhook twilio", _repoint_twilio_number),
    ("credentials twilio", _rotate_twilio_token),
    ("ses identity", _unverify_sender),
    ("alarms", _unsubscribe_alarms),
]


@pytest.fixture
def ready(system, operator) -> Operator:
    """A stack the operator has set up: credentials stored, webhooks registered, alarms subscribed."""
    code, _, err = operator.run("webhooks", "register")
    assert code == 0, err
    system.boto3_client("sns").subscribe(TopicArn=alarm_topic(system), Protocol="email", Endpoint=ON_CALL)
    return operator


@pytest.mark.parametrize(("broken", "breaker"), BREAKAGES, ids=[b.__name__.strip("_") for _, b in BREAKAGES])
def test_doctor_names_what_was_broken(system, ready, broken, breaker):
    # Given a stack that was ready to deliver (the test above shows the doctor finds nothing to fix in it)
    # When one thing is broken on purpose
    repair = breaker(system)
    try:
        code, checks = ready.doctor()
        # Then the doctor fails, and names that thing alone
        assert code == 1
        assert [name for name, status in checks.items() if status == "fail"] == [broken]
    finally:
        repair()
