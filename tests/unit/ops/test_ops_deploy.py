"""``make deploy`` (tidings_ops.deploy), how ``tidings secrets set`` reads credentials, and the stack's
parameters, outputs and resources by type as CloudFormation (on moto) lists them."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import boto3
import pytest

from tidings_ops import deploy
from tidings_ops.deployment import read_values
from tidings_ops.stack import StackResources
from tidings_ops.stack_secrets import LAYOUTS
from tidings_ops.target import OperatorError, Target

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
SAMCONFIG = """
[dev.deploy.parameters]
parameter_overrides = "Stage=\\"dev\\""

[prod.deploy.parameters]
parameter_overrides = "Stage=\\"prod\\" JwtIssuer=\\"https://id.example\\" AlarmEmail=\\"ops@a.example\\""
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """The project's template and a samconfig.toml with a fresh env (dev) and a deployed one (prod), and a
    sam that records how it was called."""
    (tmp_path / "template.yaml").write_text((ROOT / "template.yaml").read_text())
    (tmp_path / "samconfig.toml").write_text(SAMCONFIG)
    sam = tmp_path / "sam"
    sam.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/sam-args\n')
    sam.chmod(sam.stat().st_mode | stat.S_IEXEC)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_first_deployment_is_guided_with_the_parameters_explained(project, capsys):
    assert deploy.main(["--config-env", "dev", "--sam", str(project / "sam")]) == 0
    out = capsys.readouterr().out
    assert (project / "sam-args").read_text().split() == ["deploy", "--config-env", "dev", "--guided"]
    assert "First deployment" in out
    assert "JwtIssuer" in out
    assert "PublicApiBaseUrl" in out
    assert "tidings secrets set stripe --config-env dev" in out  # what comes next


def test_a_deployed_environment_deploys_as_saved(project, capsys):
    assert deploy.main(["--config-env", "prod", "--sam", str(project / "sam")]) == 0
    assert (project / "sam-args").read_text().split() == ["deploy", "--config-env", "prod"]
    rows = {row["parameter"]: row for row in deploy.plan("prod")["parameters"]}
    assert rows["AlarmEmail"] == {**rows["AlarmEmail"], "value": "ops@a.example", "set": True}
    assert rows["ReceiptFromAddress"]["set"] is False


def test_guided_on_request_and_a_dry_run_runs_nothing(project):
    assert deploy.main(["--config-env", "prod", "--guided", "--dry-run", "--sam", str(project / "sam")]) == 0
    assert not (project / "sam-args").exists()
    assert deploy.plan("prod", guided=True)["command"][-1] == "--guided"


def test_a_failing_sam_deploy_is_the_exit_status(project, capsys):
    (project / "sam").write_text("#!/bin/sh\nexit 3\n")
    assert deploy.main(["--config-env", "dev", "--sam", str(project / "sam")]) == 3
    assert "Next, from this directory" not in capsys.readouterr().out


class NotATerminal(io.StringIO):
    def isatty(self) -> bool:
        return False


TWILIO_PLAIN = {
    "account_sid": "AC" + "0" * 32,
    "api_key_sid": "SK" + "1" * 32,
    "from_number": "+15005550006",
}


def test_credentials_from_stdin_lines_or_json():
    assert read_values(LAYOUTS["stripe"], {}, NotATerminal("sk_test_abc\n")) == {"api_key": "sk_test_abc"}
    got = read_values(LAYOUTS["twilio"], TWILIO_PLAIN, NotATerminal("key-secret\nauth-token\n"))
    assert got == {**TWILIO_PLAIN, "api_key_secret": "key-secret", "auth_token": "auth-token"}
    from_json = json.dumps({**TWILIO_PLAIN, "api_key_secret": "s", "auth_token": "t"})
    assert read_values(LAYOUTS["twilio"], {}, NotATerminal(from_json))["auth_token"] == "t"


def test_credentials_from_a_prompt_are_not_echoed(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    asked = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or "SG.key")
    assert read_values(LAYOUTS["sendgrid"], {}, Terminal()) == {"api_key": "SG.key"}
    assert asked == ["SendGrid API key (SG....): "]


@pytest.mark.parametrize(
    ("provider", "given", "stdin", "said"),
    [
        ("stripe", {}, "", "needs 1: api_key"),
        ("stripe", {}, '{"api_key": ""}', "No api_key"),
        ("twilio", {}, "key-secret-1\nauth-token-1\n", "--account-sid"),
        (
            "twilio",
            {**TWILIO_PLAIN, "from_number": "0800 123"},
            "key-secret-2\nauth-token-2\n",
            "from_number",
        ),
        ("twilio", TWILIO_PLAIN, "only-one-line\n", "needs 2"),
        ("stripe", {}, "{not json", "not a JSON object"),
    ],
)
def test_bad_input_stores_nothing_and_never_repeats_a_value(provider, given, stdin, said):
    with pytest.raises(OperatorError) as raised:
        read_values(LAYOUTS[provider], given, NotATerminal(stdin))
    assert said in str(raised.value)
    assert "nothing stored" in str(raised.value)
    for line in stdin.splitlines():
        if line.strip():
            assert line not in str(raised.value)


CFN_TEMPLATE = {
    "Parameters": {"ReceiptFromAddress": {"Type": "String", "Default": "receipts@example.com"}},
    "Resources": {
        "AlarmTopic": {"Type": "AWS::SNS::Topic"},
        "EmailDeadLetterQueue": {"Type": "AWS::SQS::Queue"},
    },
    "Outputs": {"AlarmTopicArn": {"Value": {"Ref": "AlarmTopic"}}},
}


def test_parameters_outputs_and_resources_by_type_come_from_cloudformation(moto_aws):
    boto3.client("cloudformation").create_stack(
        StackName="tidings-dev",
        TemplateBody=json.dumps(CFN_TEMPLATE),
        Parameters=[{"ParameterKey": "ReceiptFromAddress", "ParameterValue": "shop@example.com"}],
    )
    resources = StackResources(Target(stack_name="tidings-dev", region=os.environ["AWS_DEFAULT_REGION"]))
    assert resources.parameters == {"ReceiptFromAddress": "shop@example.com"}
    (topic,) = resources.of_type("AWS::SNS::Topic").values()
    assert resources.outputs == {"AlarmTopicArn": topic}
    assert resources.of_type("AWS::CloudWatch::Alarm") == {}


def test_an_unknown_stack_is_one_sentence(moto_aws):
    resources = StackResources(Target(stack_name="nope", region=os.environ["AWS_DEFAULT_REGION"]))
    with pytest.raises(OperatorError, match="There is no stack nope"):
        _ = resources.parameters
