"""A whole rotation as AWS runs it: RotateSecret (moto) invokes the rotation function's handler for each
step, the handler talks to the Twilio and SendGrid sandboxes over HTTP; afterwards the saga's own
provider clients send with the new key and the sandbox refuses the old one.

moto's Lambda backend would run the function in a container; here its ``invoke`` runs the handler from
functions/rotate_secret/app.py in-process, as docs/local.md describes for the local system.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import uuid
import zipfile
from pathlib import Path

import boto3
import httpx
import pytest
from moto.awslambda.models import LambdaFunction
from pydantic import ValidationError
from support.template import create_table

from tidings.config import get_settings, load_settings
from tidings.providers.factory import ProviderFactory
from tidings.providers.models import EmailMessage, SmsMessage
from tidings.resilience.timing import FakeClock
from tidings.rotation import get_rotator
from tidings.rotation.settings import get_rotation_settings
from tidings_local.sandboxes import credentials, start_sandbox

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left"),
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]

ROOT = Path(__file__).resolve().parents[3]
REGION = "eu-west-1"
ACCOUNT = f"/2010-04-01/Accounts/{credentials.TWILIO_ACCOUNT_SID}"


class LambdaContext:
    function_name = "rotate-secret"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:rotate-secret"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def load_handler():
    """functions/rotate_secret/app.py as a fresh module: one cold start."""
    for cached in (get_settings, get_rotation_settings, get_rotator):
        cached.cache_clear()
    name = f"rotate_secret_app_{uuid.uuid4().hex[:6]}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions/rotate_secret/app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.lambda_handler


@pytest.fixture(scope="module")
def sandboxes():
    with start_sandbox("twilio") as twilio, start_sandbox("sendgrid") as sendgrid:
        yield {"twilio": twilio, "sendgrid": sendgrid}


@pytest.fixture
def system(sandboxes, provider_secret_arns, log_lines, monkeypatch, capsys):
    """moto with the provider secrets and the rotation function deployed; the handler runs in-process."""
    for running in sandboxes.values():
        running.control.reset()
    secrets = boto3.client("secretsmanager", region_name=REGION)
    arns = provider_secret_arns
    env = {
        "SENDGRID_API_BASE_URL": sandboxes["sendgrid"].base_url,
        "TWILIO_API_BASE_URL": sandboxes["twilio"].base_url,
        "SENDGRID_SECRET_ARN": arns["sendgrid"],
        "TWILIO_SECRET_ARN": arns["twilio"],
        "RECEIPT_FROM_ADDRESS": "receipts@shop.example",
        "TIDINGS_HTTP_TIMEOUT_SECONDS": "5",
        # each rotation step is audited, into the audit table as the template declares it
        "AUDIT_TABLE": create_table(boto3.client("dynamodb", region_name=REGION), "AuditTable", "audit"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    handler = load_handler()
    invocations: list[dict] = []

    def invoke_in_process(self, body, request_headers, response_headers):
        event = json.loads(body)
        invocations.append(event)
        try:
            return json.dumps(handler(event, LambdaContext()))
        except Exception as exc:  # reported as Lambda reports an unhandled error
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)})

    monkeypatch.setattr(LambdaFunction, "invoke", invoke_in_process)
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="rotate-secret", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("app.py", (ROOT / "functions/rotate_secret/app.py").read_text())
    function_arn = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName="rotate-secret",
        Runtime="python3.13",
        Role=role,
        Handler="app.lambda_handler",
        Code={"ZipFile": archive.getvalue()},
    )["FunctionArn"]
    yield {
        "secrets": secrets,
        "arns": arns,
        "env": env,
        "function_arn": function_arn,
        "handler": handler,
        "invocations": invocations,
        "sandboxes": sandboxes,
    }
    # No credential, old or new, reached a log line or stdout.
    printed = "\n".join([*log_lines.lines, *capsys.readouterr()])
    stored = [credentials.SENDGRID_API_KEY, credentials.TWILIO_API_KEY_SECRET, credentials.TWILIO_AUTH_TOKEN]
    stored += [s for s in system_values_seen if s]
    leaked = [value[:4] + "..." for value in stored if value in printed]
    system_values_seen.clear()
    assert not leaked, f"credentials reached the logs: {leaked}"


#: Values of rotated secrets a test saw, checked against the logs when the test ends.
system_values_seen: list[str] = []


def current(system, provider: str) -> dict:
    value = json.loads(system["secrets"].get_secret_value(SecretId=system["arns"][provider])["SecretString"])
    system_values_seen.extend(v for k, v in value.items() if k in ("api_key", "api_key_secret"))
    return value


def rotate(system, provider: str) -> None:
    system["secrets"].rotate_secret(
        SecretId=system["arns"][provider],
        RotationLambdaARN=system["function_arn"],
        RotationRules={"AutomaticallyAfterDays": 30},
    )


def container(system) -> ProviderFactory:
    """A Lambda container of the saga: its own credential cache and HTTP client."""
    return ProviderFactory(
        load_settings(system["env"]), timing=FakeClock().timing(), secrets_client=system["secrets"]
    )


def test_rotate_secret_runs_the_four_steps_and_twilio_sends_with_the_new_key(system):
    sms = SmsMessage(to="+447700900123", body="Paid, thanks", idempotency_key="sms-before")
    # Given a saga container that has already sent with the old key (and caches it)
    warm = container(system).sms_channel("twilio")
    warm.send(sms)
    # When Secrets Manager rotates the Twilio secret
    rotate(system, "twilio")
    # Then the function ran the four steps, in order, for one version
    assert [e["Step"] for e in system["invocations"]] == [
        "createSecret",
        "setSecret",
        "testSecret",
        "finishSecret",
    ]
    assert len({e["ClientRequestToken"] for e in system["invocations"]}) == 1
    new = current(system, "twilio")
    assert new["api_key_sid"] != credentials.TWILIO_API_KEY_SID
    # and a fresh container sends with the new key
    twilio = system["sandboxes"]["twilio"].control
    twilio.clear_requests()
    container(system).sms_channel("twilio").send(sms.model_copy(update={"idempotency_key": "sms-fresh"}))
    # and the warm one, refused with its cached old key, re-reads the secret once and sends too
    warm.send(sms.model_copy(update={"idempotency_key": "sms-warm"}))
    sends = twilio.requests(f"{ACCOUNT}/Messages.json")
    assert [r["status"] for r in sends] == [201, 401, 201]
    # and Twilio refuses the old key from now on
    with httpx.Client(
        base_url=system["sandboxes"]["twilio"].base_url,
        auth=(credentials.TWILIO_API_KEY_SID, credentials.TWILIO_API_KEY_SECRET),
        trust_env=False,
    ) as old:
        assert old.get(f"{ACCOUNT}.json").status_code == 401


def test_rotate_secret_for_sendgrid_the_email_channel_sends_with_the_new_key(system):
    rotate(system, "sendgrid")
    new = current(system, "sendgrid")
    assert new["api_key"] != credentials.SENDGRID_API_KEY
    receipt = EmailMessage(
        to="jane.doe@example.com", to_name="Jane", subject="Receipt", text="Thanks", idempotency_key="mail-1"
    )
    sent = container(system).email_channel("sendgrid").send(receipt)
    assert sent.provider == "sendgrid"
    mails = system["sandboxes"]["sendgrid"].control.requests("/v3/mail/send")
    assert [r["status"] for r in mails] == [202]
    assert mails[0]["headers"]["Authorization"].endswith(new["api_key"][-4:])
    with httpx.Client(
        base_url=system["sandboxes"]["sendgrid"].base_url,
        headers={"Authorization": f"Bearer {credentials.SENDGRID_API_KEY}"},
        trust_env=False,
    ) as old:
        assert old.get("/v3/scopes").status_code == 401


def test_handler_refuses_an_event_that_is_not_a_rotation_step(system):
    with pytest.raises(ValidationError):
        system["handler"](
            {"SecretId": system["arns"]["twilio"], "ClientRequestToken": "t", "Step": "dropSecret"},
            LambdaContext(),
        )
    assert system["sandboxes"]["twilio"].control.requests() == []
