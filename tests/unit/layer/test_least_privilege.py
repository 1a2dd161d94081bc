"""template.yaml's policies, function by function: each role reaches only what its code uses."""

from __future__ import annotations

from typing import Any

import pytest
from support.template import ROOT, sam_template

pytestmark = pytest.mark.unit

SIGNING_SECRETS = {"StripeSigningSecret", "SendGridSigningSecret", "TwilioSigningSecret"}
API_SECRETS = {"StripeSecret", "SendGridSecret", "TwilioSecret"}


def _functions() -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in sam_template()["Resources"].items()
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")
    }


def _refs(value: Any) -> set[str]:
    """Every logical id ``value`` refers to (Ref, Fn::GetAtt, ${Name} and ${Name.Attr} in Fn::Sub)."""
    if isinstance(value, dict):
        if "Ref" in value:
            return {value["Ref"]}
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return {target[0] if isinstance(target, list) else target.split(".")[0]}
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            found = {part.split("}")[0].split(".")[0] for part in text.split("${")[1:]}
            return {name for name in found if not name.startswith("AWS::")}
        return set().union(*(_refs(item) for item in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_refs(item) for item in value)) if value else set()
    return set()


def _statements(function: str) -> list[dict[str, Any]]:
    policies = _functions()[function].get("Policies", [])
    return [statement for policy in policies if "Statement" in policy for statement in policy["Statement"]]


def _templates(function: str) -> list[tuple[str, Any]]:
    """The SAM policy templates a function uses: (name, parameters)."""
    policies = _functions()[function].get("Policies", [])
    return [(name, args) for policy in policies if "Statement" not in policy for name, args in policy.items()]


def readable_secrets(function: str) -> set[str]:
    secrets = {
        ref
        for name, args in _templates(function)
        if name == "AWSSecretsManagerGetSecretValuePolicy"
        for ref in _refs(args)
    }
    for statement in _statements(function):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if "secretsmanager:GetSecretValue" in actions:
            secrets |= _refs(statement["Resource"])
    return secrets


def test_the_unauthenticated_webhook_receiver_reads_the_signing_secrets_and_no_api_credential():
    assert readable_secrets("WebhookReceiverFunction") == SIGNING_SECRETS
    environment = _functions()["WebhookReceiverFunction"]["Environment"]["Variables"]
    for provider, logical_id in (("STRIPE", "Stripe"), ("SENDGRID", "SendGrid"), ("TWILIO", "Twilio")):
        assert environment[f"{provider}_SIGNING_SECRET_ARN"] == {"Ref": f"{logical_id}SigningSecret"}


def test_only_the_receiver_and_the_rotation_read_a_signing_secret():
    readers = {name for name in _functions() if readable_secrets(name) & SIGNING_SECRETS}
    assert readers == {"WebhookReceiverFunction", "RotateSecretFunction"}


def test_each_signing_secret_and_api_secret_is_its_own_secret():
    resources = sam_template()["Resources"]
    names = {
        logical_id: resources[logical_id]["Properties"]["Name"]["Fn::Sub"]
        for logical_id in SIGNING_SECRETS | API_SECRETS
    }
    assert len(set(names.values())) == len(names)
    for logical_id in API_SECRETS:
        description = resources[logical_id]["Properties"]["Description"]
        assert "webhook_secret" not in description
        assert "webhook_public_key" not in description


def _grants(function: str) -> list[tuple[set[str], set[str], Any]]:
    """(actions, logical ids named, raw resource) of each Allow statement of the function's policies."""
    grants = []
    for statement in _statements(function):
        if statement.get("Effect") != "Allow":
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        grants.append((set(actions), _refs(statement["Resource"]), statement["Resource"]))
    return grants


TASK_TOKEN_ACTIONS = {"states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"}


def test_task_token_calls_are_scoped_to_the_saga_state_machine():
    callers = set()
    for function in _functions():
        for actions, _refs, resource in _grants(function):
            if actions & TASK_TOKEN_ACTIONS:
                callers.add(function)
                assert resource == {"Ref": "NotificationSagaStateMachine"}, function
    assert callers == {
        "WebhookProcessorFunction",
        "RetryDeliveryFunction",
        "ReconcilePaymentFunction",
        "NotifyApiFunction",  # a cancel or refund of a waiting saga
    }


def test_the_suppression_list_is_scanned_only_by_the_notify_api_and_senders_only_look_up_and_add():
    expected = {
        "WebhookReceiverFunction": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"},
        "SendSmsFunction": {"dynamodb:GetItem", "dynamodb:PutItem"},
        "RetryDeliveryFunction": {"dynamodb:GetItem", "dynamodb:PutItem"},
    }
    for function, actions in expected.items():
        granted = set().union(*(a for a, refs, _r in _grants(function) if "SuppressionsTable" in refs))
        assert granted == actions, function
        templated = {name for name, args in _templates(function) if "SuppressionsTable" in _refs(args)}
        assert templated == set(), function
    # SendEmail only reads it
    assert ("DynamoDBReadPolicy", {"TableName": {"Ref": "SuppressionsTable"}}) in _templates(
        "SendEmailFunction"
    )


def test_the_audit_log_is_append_only_for_every_writer():
    for function in _functions():
        for actions, refs, _resource in _grants(function):
            if "AuditTable" in refs:
                assert actions <= {"dynamodb:PutItem", "dynamodb:Query"}, function
        assert not any("AuditTable" in _refs(args) for _name, args in _templates(function)), function


def test_sns_publish_to_any_resource_is_only_the_sms_senders_with_the_reason_inline():
    text = (ROOT / "template.yaml").read_text()
    publishers = {
        function
        for function in _functions()
        for actions, _refs, resource in _grants(function)
        if "sns:Publish" in actions and resource == "*"
    }
    assert publishers == {"SendSmsFunction", "RetryDeliveryFunction"}
    assert text.count("has no resource ARN to name") == 2
