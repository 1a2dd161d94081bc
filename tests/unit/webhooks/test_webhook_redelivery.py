"""Bringing an in-flight duplicate back sooner never hides the record's own failure."""

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from tidings.queues import SoonerRedelivery

pytestmark = pytest.mark.unit

QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/webhooks"


@pytest.fixture
def sqs():
    return boto3.client("sqs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_the_message_is_made_visible_after_the_given_seconds(sqs):
    with Stubber(sqs) as stub:
        stub.add_response(
            "change_message_visibility",
            {},
            {"QueueUrl": QUEUE_URL, "ReceiptHandle": "rh-1", "VisibilityTimeout": 10},
        )
        assert SoonerRedelivery(sqs, QUEUE_URL).after("rh-1", 10) is True
        stub.assert_no_pending_responses()


def test_a_refusal_or_an_unreachable_sqs_is_reported_not_raised(sqs, monkeypatch):
    with Stubber(sqs) as stub:
        stub.add_client_error("change_message_visibility", service_error_code="ReceiptHandleIsInvalid")
        assert SoonerRedelivery(sqs, QUEUE_URL).after("expired", 10) is False

    def unreachable(**_):
        raise EndpointConnectionError(endpoint_url=QUEUE_URL)

    monkeypatch.setattr(sqs, "change_message_visibility", unreachable)
    assert SoonerRedelivery(sqs, QUEUE_URL).after("rh-1", 10) is False
