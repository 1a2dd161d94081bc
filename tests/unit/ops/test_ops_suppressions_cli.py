"""``tidings suppressions list|add|remove`` against a stack deployed through CloudFormation on moto."""

import json

import boto3
import pytest
from support.template import resource_properties

from tidings.suppressions.models import SuppressionReason, suppression_id
from tidings.suppressions.service import SuppressionService
from tidings.suppressions.store import SuppressionStore
from tidings_ops.cli import main

pytestmark = pytest.mark.unit

STACK = "tidings-dev"
PHONE = "+447700900123"


@pytest.fixture
def table(moto_aws, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no samconfig.toml, no running local system
    properties = resource_properties("SuppressionsTable")
    template = {
        "Resources": {
            "SuppressionsTable": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    key: properties[key] for key in ("BillingMode", "AttributeDefinitions", "KeySchema")
                },
            }
        }
    }
    cfn = boto3.client("cloudformation")
    cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    [resource] = cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    return boto3.resource("dynamodb").Table(resource["PhysicalResourceId"])


def run(capsys, *argv):
    code = main(["suppressions", *argv, "--stack-name", STACK])
    out, err = capsys.readouterr()
    return code, out, err


def test_add_list_and_remove_with_masked_addresses_in_tables_and_json(table, capsys):
    SuppressionService(SuppressionStore(table)).suppress("sms", PHONE, SuppressionReason.OPT_OUT, "twilio")
    code, out, err = run(capsys, "add", "email", "Ada@Example.com", "--note", "asked-by-phone", "--json")
    assert code == 0, err
    added = json.loads(out)
    assert (added["created"], added["address"], added["reason"]) == (True, "a***@example.com", "operator")
    assert added["added_by"].startswith("cli")
    # The table shows both, masked; --json the same
    code, out, _err = run(capsys, "list")
    assert code == 0
    assert "+44********23" in out
    assert "a***@example.com" in out
    assert PHONE not in out
    assert "ada@example.com" not in out
    code, out, _err = run(capsys, "list", "--channel", "sms", "--json")
    assert [item["suppression_id"] for item in json.loads(out)["items"]] == [suppression_id("sms", PHONE)]
    # Removed by id, or by channel and address; a second removal is one sentence and exit 2
    assert run(capsys, "remove", added["suppression_id"])[0] == 0
    assert run(capsys, "remove", "sms", PHONE, "--json")[0] == 0
    code, _out, err = run(capsys, "remove", "sms", PHONE)
    assert code == 2
    assert "No suppression" in err
    assert table.scan()["Items"] == []


def test_an_address_that_is_none_is_refused_in_one_sentence_without_echoing_it(table, capsys):
    code, _out, err = run(capsys, "add", "sms", "call-me-maybe")
    assert code == 2
    assert "call-me-maybe" not in err


@pytest.fixture
def stack_with_audit(moto_aws, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    resources = {}
    for logical_id in ("SuppressionsTable", "AuditTable"):
        properties = resource_properties(logical_id)
        keep = ("BillingMode", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")
        resources[logical_id] = {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {key: properties[key] for key in keep if key in properties},
        }
    cfn = boto3.client("cloudformation")
    cfn.create_stack(StackName=STACK, TemplateBody=json.dumps({"Resources": resources}))
    ids = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    }
    return boto3.resource("dynamodb").Table(ids["AuditTable"])


def test_a_change_made_from_the_cli_is_audited_as_the_operator_by_suppression_id(stack_with_audit, capsys):
    from tidings.audit import AuditLog

    # When an operator suppresses an address and lifts it again
    code, out, err = run(capsys, "add", "email", "Ada@Example.com", "--json")
    assert code == 0, err
    added = json.loads(out)
    assert run(capsys, "remove", added["suppression_id"])[0] == 0

    # Then the audit log has both, by the suppression's id, as the operator's IAM identity
    records = AuditLog(lambda: stack_with_audit).by_target("suppression", added["suppression_id"])
    assert [r.action for r in records] == ["suppression.added", "suppression.removed"]
    assert all(r.actor == "operator" and r.subject.startswith("iam:") for r in records)
    assert records[0].details == {"channel": "email", "reason": "operator", "source": "operator"}
    # and never the address
    assert "example.com" not in json.dumps([r.model_dump() for r in records]).lower()


def test_a_cli_change_whose_audit_cannot_be_written_still_takes_effect_and_says_so(table, capsys):
    code, out, err = run(capsys, "add", "sms", PHONE, "--json")
    assert code == 0
    assert json.loads(out)["created"] is True
    assert "audit record of suppression.added could not be written" in err
