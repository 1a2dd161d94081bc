"""``tidings config show|set`` against AppConfig on moto (with the local system's AppConfig routes), and
the audit record of every change."""

import json

import boto3
import pytest
from support.template import resource_properties

from tidings.live_config import json_schema
from tidings_local.stack.patches import install_local_appconfig
from tidings_ops.cli import main

pytestmark = pytest.mark.unit

STACK = "tidings-dev"


@pytest.fixture
def appconfig(moto_aws, monkeypatch, tmp_path):
    """The stack's audit table (CloudFormation) and its AppConfig resources as the template names them,
    with the template's defaults deployed."""
    monkeypatch.chdir(tmp_path)  # no samconfig.toml, no running local system
    install_local_appconfig()
    properties = resource_properties("AuditTable")
    keys = ("BillingMode", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")
    template = {
        "Resources": {
            "AuditTable": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {key: properties[key] for key in keys if key in properties},
            }
        }
    }
    boto3.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    client = boto3.client("appconfig")
    profile = resource_properties("LiveConfigProfile")
    app = client.create_application(Name=STACK)["Id"]
    env = client.create_environment(ApplicationId=app, Name="dev")["Id"]
    profile_id = client.create_configuration_profile(
        ApplicationId=app,
        Name=profile["Name"],
        LocationUri="hosted",
        Type=profile["Type"],
        Validators=profile["Validators"],
    )["Id"]
    strategy = client.create_deployment_strategy(
        Name=f"{STACK}-all-at-once",
        DeploymentDurationInMinutes=0,
        GrowthFactor=100,
        ReplicateTo="NONE",
    )["Id"]
    version = client.create_hosted_configuration_version(
        ApplicationId=app,
        ConfigurationProfileId=profile_id,
        Content=b'{"twilio_rate_per_second": 10, "email_providers": "sendgrid_then_ses"}',
        ContentType="application/json",
    )["VersionNumber"]
    client.start_deployment(
        ApplicationId=app,
        EnvironmentId=env,
        DeploymentStrategyId=strategy,
        ConfigurationProfileId=profile_id,
        ConfigurationVersion=str(version),
    )
    return {"client": client, "app": app, "env": env, "profile": profile_id}


def run(capsys, *argv):
    code = main(["config", *argv, "--stack-name", STACK])
    out, err = capsys.readouterr()
    return code, out, err


def audit_records():
    [resource] = boto3.client("cloudformation").list_stack_resources(StackName=STACK)[
        "StackResourceSummaries"
    ]
    return boto3.resource("dynamodb").Table(resource["PhysicalResourceId"]).scan()["Items"]


def test_set_merges_validates_deploys_and_audits_the_change(appconfig, capsys):
    # When an operator lowers Twilio's rate and sends e-mail through SES only
    code, out, err = run(capsys, "set", "twilio_rate_per_second=2", "email_providers=ses_only", "--json")
    # Then a new version holding the merged document is deployed
    assert code == 0, err
    answer = json.loads(out)
    assert answer["document"] == {"twilio_rate_per_second": 2, "email_providers": "ses_only"}
    assert answer["changed"] == {"email_providers": "ses_only", "twilio_rate_per_second": "2"}
    code, out, _err = run(capsys, "show", "--json")
    shown = json.loads(out)
    assert shown["document"] == answer["document"]
    assert shown["deployment"]["ConfigurationVersion"] == str(answer["version"])
    # And the audit log says who changed what to which value
    [record] = audit_records()
    assert (record["action"], record["outcome"], record["target_kind"]) == (
        "config.set",
        "ok",
        "configuration",
    )
    assert record["details"]["twilio_rate_per_second"] == "2"
    assert record["details"]["email_providers"] == "ses_only"
    assert int(record["details"]["version"]) == answer["version"]


def test_an_invalid_change_is_refused_before_anything_is_deployed_and_is_audited(appconfig, capsys):
    code, _out, err = run(capsys, "set", "twilio_rate_per_second=-1")
    assert code == 2
    assert "twilio_rate_per_second: Input should be greater than 0" in err
    code, _out, err = run(capsys, "set", "smtp_password=hunter2")
    assert code == 2
    assert "not a setting that can change live" in err
    # The deployed configuration is still the last good one
    code, out, _err = run(capsys, "show", "--json")
    assert json.loads(out)["document"]["twilio_rate_per_second"] == 10
    outcomes = sorted((r["outcome"], r["details"].get("code")) for r in audit_records())
    assert outcomes == [("refused", "invalid_configuration")] * 2


def test_appconfig_itself_refuses_a_document_the_schema_forbids(appconfig):
    # A document written past the CLI (console, API) still meets the profile's JSON Schema validator
    client = appconfig["client"]
    version = client.create_hosted_configuration_version(
        ApplicationId=appconfig["app"],
        ConfigurationProfileId=appconfig["profile"],
        Content=b'{"sms_providers": "carrier_pigeon"}',
        ContentType="application/json",
    )["VersionNumber"]
    [strategy] = client.list_deployment_strategies()["Items"]
    with pytest.raises(client.exceptions.BadRequestException):
        client.start_deployment(
            ApplicationId=appconfig["app"],
            EnvironmentId=appconfig["env"],
            DeploymentStrategyId=strategy["Id"],
            ConfigurationProfileId=appconfig["profile"],
            ConfigurationVersion=str(version),
        )


def test_the_templates_validator_is_the_settings_models_schema():
    [validator] = resource_properties("LiveConfigProfile")["Validators"]
    assert validator["Type"] == "JSON_SCHEMA"
    assert json.loads(validator["Content"]) == json_schema(), (
        "template.yaml's LiveConfigProfile validator is stale: paste `tidings config schema` into it"
    )
