"""The template's data guarantees that checkov alone would not keep: every role may use the optional
customer-managed key, and every table and queue takes it when it is given."""

import pytest
from support.template import sam_template

pytestmark = pytest.mark.unit


def resources(kind: str) -> dict[str, dict]:
    return {name: r for name, r in sam_template()["Resources"].items() if r["Type"] == kind}


def test_every_function_and_state_machine_role_may_use_the_customer_managed_key():
    roles = {
        ref["Ref"]
        for ref in resources("AWS::IAM::ManagedPolicy")["CustomerManagedKeyUse"]["Properties"]["Roles"]
    }
    principals = resources("AWS::Serverless::Function") | resources("AWS::Serverless::StateMachine")
    assert roles == {f"{name}Role" for name in principals}


def test_every_table_has_point_in_time_recovery_and_takes_the_key():
    for name, table in resources("AWS::DynamoDB::Table").items():
        properties = table["Properties"]
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, name
        assert properties["SSESpecification"]["KMSMasterKeyId"]["Fn::If"][0] == "UseCustomerManagedKey", name


def test_every_queue_and_secret_takes_the_key():
    for name, queue in resources("AWS::SQS::Queue").items():
        assert queue["Properties"]["KmsMasterKeyId"]["Fn::If"][0] == "UseCustomerManagedKey", name
    for name, secret in resources("AWS::SecretsManager::Secret").items():
        assert secret["Properties"]["KmsKeyId"]["Fn::If"][0] == "UseCustomerManagedKey", name
