"""The receiver Lambda on moto: verified deliveries are queued and acknowledged, forged ones refused
with a 4xx that says nothing useful, and nothing of a refused delivery reaches the queue."""

import json
import time

import pytest
from support.webhook_http import (
    sendgrid_delivery,
    stripe_delivery,
    stripe_payment_event,
    twilio_delivery,
)

pytestmark = pytest.mark.integration


def queued(aws) -> list[dict]:
    messages = []
    while True:
        batch = aws.sqs.receive_message(QueueUrl=aws.env["WEBHOOK_QUEUE_URL"], MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not batch:
            return messages
        messages.extend(json.loads(m["Body"]) for m in batch)


def emitted_metrics(captured: str) -> dict[str, float]:
    """Metric name -> value from the EMF lines Powertools printed."""
    found: dict[str, float] = {}
    for line in captured.splitlines():
        if '"_aws"' not in line:
            continue
        record = json.loads(line)
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = record[metric["Name"]]
                found[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return found


def test_signed_stripe_payment_event_is_queued_and_acknowledged(receiver, aws, context, capsys):
    # Given a genuine Stripe delivery for a 3-D Secure payment
    event = stripe_delivery(stripe_payment_event("evt_1", "payment_intent.succeeded", "pi_1", "n-1"))
    # When it reaches the receiver
    response = receiver.lambda_handler(event, context)
    # Then it is acknowledged at once and the normalised event waits on the queue
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"received": 1}
    [message] = queued(aws)
    assert message["event_id"] == "evt_1"
    assert message["provider_object_id"] == "pi_1"
    assert message["notification_id"] == "n-1"
    # And no personal data travels on the queue
    assert "jane.doe" not in json.dumps(message)
    assert emitted_metrics(capsys.readouterr().out)["WebhookAccepted"] == 1


def test_base64_encoded_body_is_verified_on_the_decoded_bytes(receiver, aws, context):
    event = stripe_delivery(
        stripe_payment_event("evt_b64", "payment_intent.succeeded", "pi_2", "n-2"), base64_body=True
    )
    assert receiver.lambda_handler(event, context)["statusCode"] == 200
    assert [m["event_id"] for m in queued(aws)] == ["evt_b64"]


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        pytest.param(
            lambda e: e | {"body": e["body"].replace("pi_1", "pi_9")},
            "no_matching_signature",
            id="tampered body",
        ),
        pytest.param(
            lambda e: e | {"headers": e["headers"] | {"stripe-signature": "t=1,v1=00"}},
            "timestamp_outside_tolerance",
            id="expired header",
        ),
        pytest.param(
            lambda e: e | {"headers": e["headers"] | {"stripe-signature": "v1=00"}},
            "malformed_header",
            id="malformed header",
        ),
        pytest.param(
            lambda e: e | {"headers": {k: v for k, v in e["headers"].items() if k != "stripe-signature"}},
            "missing_header",
            id="missing header",
        ),
        pytest.param(lambda e: e | {"body": ""}, "empty_body", id="empty body"),
        pytest.param(
            lambda e: e | {"body": "***", "isBase64Encoded": True}, "malformed_body", id="corrupt base64"
        ),
    ],
)
def test_forged_stripe_delivery_is_refused_without_detail_and_nothing_is_queued(
    forge, reason, receiver, aws, context, capsys, caplog
):
    genuine = stripe_delivery(stripe_payment_event("evt_1", "payment_intent.succeeded", "pi_1", "n-1"))
    response = receiver.lambda_handler(forge(genuine), context)
    assert response["statusCode"] == 400
    assert json.loads(response["body"]) == {"message": "invalid signature"}
    assert queued(aws) == []
    output = capsys.readouterr().out
    assert emitted_metrics(output)["WebhookRejected"] == 1
    # The rejection is logged with its reason but without the payload's personal data
    [rejection] = [r for r in caplog.records if r.getMessage() == "webhook rejected"]
    assert rejection.reason == reason
    assert "jane.doe" not in output
    assert all("jane.doe" not in str(record.__dict__) for record in caplog.records)


SIGNED_BUT_MALFORMED = {
    "not json": b"{not json",
    "a JSON array": b"[]",
    "a JSON string": b'"evt_1"',
    "data null": b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": null}',
    "an id of 300 characters": json.dumps(
        stripe_payment_event("evt_" + "x" * 300, "payment_intent.succeeded", "pi_1", "n-1")
    ).encode(),
    "nested 3,000 deep": b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": '
    + b"[" * 3000
    + b"]" * 3000
    + b"}",
    "not UTF-8": b'{"id": "evt_\xff\xfe"}',
}


@pytest.mark.parametrize("body", list(SIGNED_BUT_MALFORMED.values()), ids=list(SIGNED_BUT_MALFORMED))
def test_a_signed_stripe_delivery_with_a_malformed_payload_is_a_400_and_counted(
    body, receiver, aws, context, capsys
):
    # Given a delivery genuinely signed with the current secret, whose payload is not a Stripe event
    event = stripe_delivery(body, base64_body=True)  # base64: API Gateway's way with bytes not UTF-8
    # When it reaches the receiver
    response = receiver.lambda_handler(event, context)
    # Then it is a 400 (never a 500, which the provider would retry for days), counted for the alarm
    assert (response["statusCode"], json.loads(response["body"])) == (400, {"message": "malformed payload"})
    assert emitted_metrics(capsys.readouterr().out)["WebhookMalformed"] == 1
    assert queued(aws) == []


@pytest.mark.parametrize("body", [b"{}", b'"x"', b"[" * 3000 + b"]" * 3000, b"[1, 2]"])
def test_a_signed_sendgrid_delivery_with_a_malformed_payload_is_a_400_not_a_500(body, receiver, aws, context):
    response = receiver.lambda_handler(sendgrid_delivery(body), context)
    assert response["statusCode"] == 400
    assert queued(aws) == []


def test_stripe_signature_older_than_the_tolerance_is_refused(receiver, aws, context):
    event = stripe_delivery(
        stripe_payment_event("evt_old", "payment_intent.succeeded", "pi_1", "n-1"), at=int(time.time()) - 301
    )
    assert receiver.lambda_handler(event, context)["statusCode"] == 400
    assert queued(aws) == []


def test_stripe_signed_with_another_secret_is_refused(receiver, aws, context):
    event = stripe_delivery(
        stripe_payment_event("evt_x", "payment_intent.succeeded", "pi_1", "n-1"), secret="whsec_attacker"
    )
    assert receiver.lambda_handler(event, context)["statusCode"] == 400
    assert queued(aws) == []


def test_sendgrid_batch_is_queued_item_by_item_without_addresses(receiver, aws, context):
    items = [
        {
            "email": "jane@example.com",
            "event": "processed",
            "sg_event_id": f"sg-{i}",
            "sg_message_id": "m1",
            "timestamp": int(time.time()),
            "notification_id": "n-1",
        }
        for i in range(12)  # more than one SQS batch
    ] + [{"email": "jane@example.com", "event": "open", "sg_event_id": "sg-open", "sg_message_id": "m1"}]
    response = receiver.lambda_handler(sendgrid_delivery(items), context)
    assert json.loads(response["body"]) == {"received": 12}
    messages = queued(aws)
    assert sorted(m["event_id"] for m in messages) == sorted(f"sg-{i}" for i in range(12))
    assert "jane@" not in json.dumps(messages)


def test_sendgrid_signed_with_another_key_is_refused(receiver, aws, context):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    items = [{"event": "delivered", "sg_event_id": "sg-1", "notification_id": "n-1"}]
    assert (
        receiver.lambda_handler(sendgrid_delivery(items, private_key_pem=other), context)["statusCode"] == 400
    )
    assert queued(aws) == []


def test_twilio_status_callback_is_verified_against_the_rebuilt_url(receiver, aws, context):
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+447700900123", "ErrorCode": ""}
    response = receiver.lambda_handler(twilio_delivery(params, query="notification_id=n-7"), context)
    assert response["statusCode"] == 200
    [message] = queued(aws)
    assert (message["event_id"], message["notification_id"]) == ("SM1:delivered", "n-7")
    assert "7700900123" not in json.dumps(message)


def test_twilio_signature_for_another_url_is_refused(receiver, aws, context):
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    event = twilio_delivery(
        params,
        query="notification_id=n-7",
        signed_url="https://evil.example.com/webhooks/twilio?notification_id=n-7",
    )
    assert receiver.lambda_handler(event, context)["statusCode"] == 400
    assert queued(aws) == []


def test_twilio_signed_with_the_default_port_is_accepted(receiver, aws, context):
    from support.webhook_http import HOST

    params = {"MessageSid": "SM2", "MessageStatus": "sent"}
    event = twilio_delivery(params, signed_url=f"https://{HOST}:443/webhooks/twilio")
    assert receiver.lambda_handler(event, context)["statusCode"] == 200


def test_previous_stripe_secret_is_accepted_only_during_a_roll(receiver, aws, context):
    import boto3

    # Given a roll in progress: the new secret is current, the old one valid for another hour
    secret = {
        "webhook_secret": "whsec_new",
        "previous_webhook_secret": "whsec_tidings_local",
        "previous_valid_until": int(time.time()) + 3600,
    }
    boto3.client("secretsmanager").put_secret_value(
        SecretId=aws.env["STRIPE_SIGNING_SECRET_ARN"], SecretString=json.dumps(secret)
    )
    receiver.api.credentials.clear()
    old = stripe_delivery(stripe_payment_event("evt_old_key", "payment_intent.succeeded", "pi", "n"))
    new = stripe_delivery(
        stripe_payment_event("evt_new_key", "payment_intent.succeeded", "pi", "n"), secret="whsec_new"
    )
    assert receiver.lambda_handler(old, context)["statusCode"] == 200
    assert receiver.lambda_handler(new, context)["statusCode"] == 200
    # When the roll has ended
    secret["previous_valid_until"] = int(time.time()) - 1
    boto3.client("secretsmanager").put_secret_value(
        SecretId=aws.env["STRIPE_SIGNING_SECRET_ARN"], SecretString=json.dumps(secret)
    )
    receiver.api.credentials.clear()
    # Then the old secret no longer opens the door
    assert receiver.lambda_handler(old, context)["statusCode"] == 400


def test_unknown_provider_route_is_not_found(receiver, context):
    from support.webhook_http import http_event

    event = http_event("/webhooks/paypal", b"{}", {})
    assert receiver.lambda_handler(event, context)["statusCode"] == 404


def test_queue_failure_answers_5xx_so_the_provider_delivers_again(receiver, aws, context):
    aws.sqs.delete_queue(QueueUrl=aws.env["WEBHOOK_QUEUE_URL"])
    event = stripe_delivery(stripe_payment_event("evt_q", "payment_intent.succeeded", "pi", "n"))
    response = receiver.lambda_handler(event, context)
    assert response["statusCode"] == 503


def test_the_receiver_verifies_with_the_signing_secrets_alone_and_never_reads_an_api_credential(
    receiver, aws, context, monkeypatch
):
    import boto3

    # Given the providers' API credential secrets out of the receiver's reach (as its IAM policy has it)
    client = boto3.client("secretsmanager")
    read: list[str] = []
    original = client.get_secret_value

    def get_secret_value(**kwargs):
        read.append(kwargs["SecretId"])
        return original(**kwargs)

    monkeypatch.setattr(client, "get_secret_value", get_secret_value)
    from tidings.secrets import CredentialStore

    receiver.api.__dict__["credentials"] = CredentialStore(ttl_seconds=0, client=client)

    # When a signed event of each provider arrives
    stripe = stripe_delivery(stripe_payment_event("evt_split", "payment_intent.succeeded", "pi", "n"))
    assert receiver.lambda_handler(stripe, context)["statusCode"] == 200

    # Then only the signing secrets were read
    api_secrets = {aws.env[f"{name}_SECRET_ARN"] for name in ("STRIPE", "SENDGRID", "TWILIO")}
    assert read
    assert not set(read) & api_secrets
    assert set(read) <= {aws.env[f"{name}_SIGNING_SECRET_ARN"] for name in ("STRIPE", "SENDGRID", "TWILIO")}
