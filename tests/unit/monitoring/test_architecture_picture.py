"""docs/architecture.svg is drawn from the current template.yaml (`make architecture` redraws it)."""

from __future__ import annotations

import pytest

from tidings_local import architecture
from tidings_local.stack.template import parse_yaml

pytestmark = pytest.mark.unit


def test_the_dot_source_and_the_picture_match_the_template():
    source = architecture.dot_source()
    assert architecture.DOT.read_text() == source, "run `make architecture`"
    assert architecture.stamp(source) in architecture.SVG.read_text(), "run `make architecture`"


def test_the_picture_shows_every_function_queue_table_and_the_saga():
    resources = parse_yaml(architecture.TEMPLATE.read_text())["Resources"]
    svg = architecture.SVG.read_text()
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Serverless::Function":
            assert f">{architecture._short(logical_id)}<" in svg, logical_id
        elif resource["Type"] in ("AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::Serverless::StateMachine"):
            assert f">{logical_id}" in svg, logical_id


def test_the_saga_calls_its_step_functions_and_queues_feed_their_consumers():
    source = architecture.dot_source()
    assert "NotificationSagaStateMachine -> ChargePaymentFunction" in source
    assert "SmsOutageQueue -> RetryDeliveryFunction" in source
    assert "SmsOutageQueue -> SmsDeadLetterQueue" in source
    assert "WebhookReceiverFunction -> Stripe" not in source  # it verifies signatures, it calls no one
