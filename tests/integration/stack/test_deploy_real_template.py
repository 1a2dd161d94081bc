"""The real template.yaml deployed on moto: every resource exists with the properties the template gives it.

Expectations are read from template.yaml itself, so the test follows the template as it grows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tidings_local.stack.system import DEFAULT_TEMPLATE, LocalSystem
from tidings_local.stack.template import parse_yaml

pytestmark = pytest.mark.integration

SAM = parse_yaml(DEFAULT_TEMPLATE.read_text())
RESOURCES: dict[str, dict[str, Any]] = SAM.get("Resources", {})
GLOBAL_FUNCTION = (SAM.get("Globals") or {}).get("Function", {})


def _ids(resource_type: str) -> list[str]:
    return [lid for lid, r in RESOURCES.items() if r["Type"] == resource_type and "Condition" not in r]


@pytest.fixture(scope="module")
def system() -> Iterator[LocalSystem]:
    # Sandboxes off: provider URLs keep their template defaults, which the env checks below expect.
    with LocalSystem.start(DEFAULT_TEMPLATE, sandboxes=False, pollers=False, serve_api=False) as started:
        yield started


def _expected(system: LocalSystem, value: Any) -> Any:
    """The few intrinsics the template uses in plain values, evaluated independently of the deployer."""
    parameters = system.stack.template.parameters  # the inputs: defaults plus the local overrides
    if isinstance(value, dict) and set(value) == {"Ref"}:
        name = value["Ref"]
        return str(parameters[name]) if name in parameters else system.physical_id(name)
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        logical_id, attribute = target if isinstance(target, list) else target.split(".", 1)
        return system.attr(logical_id, attribute)
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        text = value["Fn::Sub"]
        for name, parameter in parameters.items():
            text = text.replace("${" + name + "}", str(parameter))
        return text
    return value


@pytest.mark.parametrize("logical_id", _ids("AWS::DynamoDB::Table"))
def test_tables_have_the_template_key_schema_and_ttl(system: LocalSystem, logical_id: str) -> None:
    props = RESOURCES[logical_id]["Properties"]
    ddb = system.boto3_client("dynamodb")
    name = system.physical_id(logical_id)

    table = ddb.describe_table(TableName=name)["Table"]

    assert table["KeySchema"] == props["KeySchema"]
    by_name = lambda items: sorted(items, key=lambda a: a["AttributeName"])  # noqa: E731
    assert by_name(table["AttributeDefinitions"]) == by_name(props["AttributeDefinitions"])
    if props.get("BillingMode"):
        assert table["BillingModeSummary"]["BillingMode"] == props["BillingMode"]
    declared_indexes = {i["IndexName"] for i in props.get("GlobalSecondaryIndexes", [])}
    assert {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])} == declared_indexes
    ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if props.get("TimeToLiveSpecification", {}).get("Enabled"):
        assert ttl == {
            "TimeToLiveStatus": "ENABLED",
            "AttributeName": props["TimeToLiveSpecification"]["AttributeName"],
        }
    else:
        assert ttl["TimeToLiveStatus"] == "DISABLED"


@pytest.mark.parametrize("logical_id", _ids("AWS::SQS::Queue"))
def test_queues_have_the_template_attributes_and_redrive(system: LocalSystem, logical_id: str) -> None:
    props = RESOURCES[logical_id].get("Properties") or {}
    attributes = system.boto3_client("sqs").get_queue_attributes(
        QueueUrl=system.physical_id(logical_id), AttributeNames=["All"]
    )["Attributes"]
    for key in (
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "DelaySeconds",
        "ReceiveMessageWaitTimeSeconds",
    ):
        if key in props:
            assert attributes[key] == str(_expected(system, props[key])), key
    if "RedrivePolicy" in props:
        redrive = json.loads(attributes["RedrivePolicy"])
        assert int(redrive["maxReceiveCount"]) == int(
            _expected(system, props["RedrivePolicy"]["maxReceiveCount"])
        )
        assert redrive["deadLetterTargetArn"] == _expected(
            system, props["RedrivePolicy"]["deadLetterTargetArn"]
        )


@pytest.mark.parametrize("logical_id", _ids("AWS::SecretsManager::Secret"))
def test_secrets_exist_under_the_template_name_with_local_values(
    system: LocalSystem, logical_id: str
) -> None:
    props = RESOURCES[logical_id].get("Properties") or {}
    client = system.boto3_client("secretsmanager")
    secret = client.describe_secret(SecretId=system.physical_id(logical_id))
    if "Name" in props:
        assert secret["Name"] == _expected(system, props["Name"])
    value = client.get_secret_value(SecretId=system.physical_id(logical_id))["SecretString"]
    assert value  # seeded (provider credentials of the sandboxes) or generated


def test_provider_secrets_hold_the_sandbox_credentials(system: LocalSystem) -> None:
    from tidings_local.sandboxes import credentials

    client = system.boto3_client("secretsmanager")
    names = {system.physical_id(lid): lid for lid in _ids("AWS::SecretsManager::Secret")}
    stripe = [arn for arn in names if "/stripe" in arn]
    assert stripe, "the template declares a Stripe secret"
    document = json.loads(client.get_secret_value(SecretId=stripe[0])["SecretString"])
    assert document["api_key"] == credentials.STRIPE_API_KEY


@pytest.mark.parametrize("logical_id", _ids("AWS::Serverless::Function"))
def test_functions_get_globals_plus_their_own_environment(system: LocalSystem, logical_id: str) -> None:
    props = RESOURCES[logical_id]["Properties"]
    config = system.boto3_client("lambda").get_function_configuration(
        FunctionName=system.physical_id(logical_id)
    )

    assert config["Handler"] == props.get("Handler", GLOBAL_FUNCTION.get("Handler"))
    assert config["Runtime"] == props.get("Runtime", GLOBAL_FUNCTION.get("Runtime"))
    assert config["Timeout"] == int(props.get("Timeout", GLOBAL_FUNCTION.get("Timeout", 3)))
    declared = {
        **(GLOBAL_FUNCTION.get("Environment") or {}).get("Variables", {}),
        **(props.get("Environment") or {}).get("Variables", {}),
    }
    deployed = config["Environment"]["Variables"]
    assert set(deployed) == set(declared)
    for name, value in declared.items():
        expected = _expected(system, value)
        if not isinstance(expected, dict):  # an intrinsic this test does not evaluate
            assert deployed[name] == str(expected), name
    # and the local worker for it runs with exactly that environment
    assert system.runtime.specs[logical_id].environment == deployed


@pytest.mark.parametrize("logical_id", _ids("AWS::Serverless::Function"))
def test_function_events_are_wired(system: LocalSystem, logical_id: str) -> None:
    events = (RESOURCES[logical_id]["Properties"].get("Events") or {}).values()
    routes = set(system.api.routes)
    mappings = {(m.function_name, m.queue_arn): m for m in system.stack.sqs_mappings}
    for event in events:
        props = event.get("Properties") or {}
        if event["Type"] == "HttpApi":
            assert f"{props['Method'].upper()} {props['Path']}" in routes
        elif event["Type"] == "SQS":
            mapping = mappings[(system.physical_id(logical_id), _expected(system, props["Queue"]))]
            assert mapping.batch_size == int(props.get("BatchSize", 10))
            reports = "ReportBatchItemFailures" in props.get("FunctionResponseTypes", [])
            assert mapping.report_batch_item_failures == reports


@pytest.mark.parametrize("logical_id", _ids("AWS::Serverless::StateMachine"))
def test_state_machines_have_every_substitution_resolved(system: LocalSystem, logical_id: str) -> None:
    props = RESOURCES[logical_id]["Properties"]
    definition = system.boto3_client("stepfunctions").describe_state_machine(
        stateMachineArn=system.physical_id(logical_id)
    )["definition"]
    assert "${" not in definition
    json.loads(definition)
    for value in (props.get("DefinitionSubstitutions") or {}).values():
        expected = _expected(system, value)
        if isinstance(expected, str) and expected.startswith("arn:"):
            assert expected in definition


@pytest.mark.parametrize("logical_id", _ids("AWS::CloudWatch::Alarm"))
def test_alarms_exist_with_their_metric(system: LocalSystem, logical_id: str) -> None:
    props = RESOURCES[logical_id]["Properties"]
    alarms = system.boto3_client("cloudwatch").describe_alarms(AlarmNames=[system.physical_id(logical_id)])
    (alarm,) = alarms["MetricAlarms"]
    assert alarm.get("MetricName") == props.get("MetricName")
    assert alarm["ComparisonOperator"] == props["ComparisonOperator"]
    assert alarm["Threshold"] == float(_expected(system, props["Threshold"]))
    assert [m["Id"] for m in alarm.get("Metrics", [])] == [m["Id"] for m in props.get("Metrics", [])]
    # Every alarm tells the topic the stack created (no AlarmTopicArn given locally), going and clearing.
    topic = system.physical_id("AlarmTopic")
    assert alarm["AlarmActions"] == [topic]
    assert alarm["OKActions"] == [topic]


def test_topics_exist(system: LocalSystem) -> None:
    # (one test over all topics: the template may declare none)
    topics = system.boto3_client("sns").list_topics()["Topics"]
    for logical_id in _ids("AWS::SNS::Topic"):
        assert {"TopicArn": system.physical_id(logical_id)} in topics


def test_the_receipt_sender_is_a_verified_ses_identity(system: LocalSystem) -> None:
    # On AWS the operator verifies it; locally the SES fallback must be able to send from it.
    sender = system.stack.template.parameters.get("ReceiptFromAddress")
    assert sender
    assert sender in system.boto3_client("ses").list_identities()["Identities"]
