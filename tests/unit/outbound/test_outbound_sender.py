"""SendCallback on fakes: what the shop receives verifies with the Standard Webhooks reference library,
a failure is tried again after the configured exponential delay, and the last try lets the message go
to the dead-letter queue. Then the same on moto's SQS, with its redrive policy: no real waits (the
schedule is configured to zero seconds there)."""

import json
import time
from collections.abc import Mapping
from typing import Any

import boto3
import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tidings.outbound import signing
from tidings.outbound.sender import CallbackSender, secrets_in_use
from tidings.outbound.settings import SenderSettings, load

pytestmark = pytest.mark.unit

SECRET = signing.generate_secret()
BODY = json.dumps(
    {"id": "msg_1", "type": "notification.finished", "timestamp": "t", "data": {"status": "delivered"}}
)


def settings(**overrides: str) -> SenderSettings:
    env = {
        "CALLBACK_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:cb",
        "CALLBACK_QUEUE_URL": "https://sqs.local/cb",
        "CALLBACK_MAX_ATTEMPTS": "4",
        "CALLBACK_RETRY_BASE_SECONDS": "3",
        "CALLBACK_RETRY_BACKOFF_RATE": "2",
        **overrides,
    }
    return load(SenderSettings, env)


class Shop:
    """The shop's endpoint: answers each POST with the next scripted status (or raises), records it."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.received: list[tuple[str, dict[str, str], bytes]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.received.append((str(request.url), dict(request.headers), request.content))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler))


def sender_for(shop: Shop, secret: Mapping[str, Any] | None = None, **overrides: str):
    redeliveries: list[tuple[str, int]] = []
    http = shop.client()
    sender = CallbackSender(
        settings=settings(**overrides),
        http=lambda: http,
        signing_secret=lambda: secret or {"signing_secret": SECRET},
        redeliver_after=lambda handle, seconds: redeliveries.append((handle, seconds)) or True,
    )
    return sender, redeliveries


def record(attempt: int = 1, url: str = "https://shop.example.com/hook?token=abc") -> dict[str, Any]:
    body = {"webhook_id": "msg_1", "type": "notification.finished", "url": url, "body": BODY}
    return {
        "messageId": f"m-{attempt}",
        "receiptHandle": f"rh-{attempt}",
        "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": str(attempt)},
    }


def test_the_shop_receives_a_callback_the_reference_library_verifies():
    shop = Shop(200)
    sender, redeliveries = sender_for(shop)

    assert sender.handle([record()]) == {"batchItemFailures": []}

    [(url, headers, content)] = shop.received
    assert url == "https://shop.example.com/hook?token=abc"
    assert content.decode() == BODY
    assert Webhook(SECRET).verify(content.decode(), headers) == json.loads(BODY)
    assert headers["webhook-id"] == "msg_1"
    assert headers["content-type"] == "application/json"
    assert redeliveries == []


@pytest.mark.parametrize("failure", [500, 503, 404, httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
def test_a_failed_try_comes_back_after_the_configured_delay(failure):
    sender, redeliveries = sender_for(Shop(failure))

    assert sender.handle([record(attempt=1)]) == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert redeliveries == [("rh-1", 3)]


def test_the_delays_grow_exponentially_and_the_last_try_goes_to_the_dead_letter_queue():
    # Given a shop that answers 503 to every try, tries 1..4 (CALLBACK_MAX_ATTEMPTS=4)
    sender, redeliveries = sender_for(Shop(503, 503, 503, 503))

    for attempt in range(1, 5):
        sender.handle([record(attempt=attempt)])

    # Then 3 s, 6 s, 12 s, and after the fourth at once (SQS moves it to the DLQ on the next receive)
    assert [seconds for _handle, seconds in redeliveries] == [3, 6, 12, 0]


def test_the_delay_is_capped():
    sender, redeliveries = sender_for(
        Shop(500), CALLBACK_RETRY_MAX_DELAY_SECONDS="5", CALLBACK_MAX_ATTEMPTS="9"
    )
    sender.handle([record(attempt=3)])
    assert redeliveries == [("rh-3", 5)]


def test_every_try_carries_the_same_id_and_a_fresh_signed_timestamp():
    shop = Shop(500, 200)
    sender, _ = sender_for(shop)
    clock = iter([1_000_000.0, 1_000_090.0])
    sender.clock = lambda: next(clock)

    sender.handle([record(attempt=1)])
    sender.handle([record(attempt=2)])

    first, second = (headers for _url, headers, _body in shop.received)
    assert first["webhook-id"] == second["webhook-id"] == "msg_1"
    assert (first["webhook-timestamp"], second["webhook-timestamp"]) == ("1000000", "1000090")
    for headers in (first, second):
        signing.verify(BODY, headers, SECRET, now=int(headers["webhook-timestamp"]))


def test_during_a_roll_both_keys_sign_until_the_previous_one_expires():
    new, old = signing.generate_secret(), signing.generate_secret()
    secret = {"signing_secret": new, "previous_signing_secret": old, "previous_valid_until": 2_000}
    assert secrets_in_use(secret, now=1_999) == [new, old]
    assert secrets_in_use(secret, now=2_000) == [new]

    shop = Shop(200)
    sender, _ = sender_for(shop, secret)
    sender.clock = lambda: 1_500.0
    sender.handle([record()])
    [(_url, headers, content)] = shop.received
    for key in (new, old):
        assert signing.verify(content, headers, key, now=1_500) == "msg_1"


def test_a_url_the_configuration_does_not_allow_is_never_called():
    shop = Shop()
    sender, redeliveries = sender_for(shop)
    assert sender.handle([record(url="http://shop.example.com/hook")])["batchItemFailures"]
    assert shop.received == []
    assert redeliveries == [("rh-1", 0)]


def test_a_malformed_message_fails_without_a_call(log_lines):
    shop = Shop()
    sender, redeliveries = sender_for(shop)
    broken = {**record(), "body": "{not json"}
    assert sender.handle([broken]) == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert shop.received == []
    assert redeliveries == [("rh-1", 0)]
    assert "not json" not in "\n".join(log_lines.lines)


def test_logs_name_the_host_but_never_the_path_query_body_or_secret(log_lines):
    sender, _ = sender_for(Shop(503))
    sender.handle([record(attempt=2)])
    text = "\n".join(log_lines.lines)
    assert "shop.example.com" in text
    for hidden in ("token=abc", "/hook", SECRET, "delivered"):
        assert hidden not in text


# --- on moto's SQS: the queue's own redrive policy ends it in the dead-letter queue ------------------


class Poller:
    """One receive-invoke-delete round, as the Lambda service (and the local SQS poller) runs it."""

    def __init__(self, sqs, queue_url: str, sender: CallbackSender) -> None:
        self.sqs, self.queue_url, self.sender = sqs, queue_url, sender

    def round(self) -> int:
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        records = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
            }
            for m in messages
        ]
        failed = {f["itemIdentifier"] for f in self.sender.handle(records)["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return len(messages)


def test_on_sqs_a_callback_failing_every_try_ends_in_the_dead_letter_queue_after_the_last(moto_aws):
    # Given the template's queue pair, with the schedule set to zero seconds and three tries
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="callbacks-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName="callbacks",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})},
    )["QueueUrl"]
    from tidings.queues import SoonerRedelivery

    shop = Shop(503, 502, 500, 200)
    http = shop.client()
    sender = CallbackSender(
        settings=settings(
            CALLBACK_MAX_ATTEMPTS="3", CALLBACK_RETRY_BASE_SECONDS="0", CALLBACK_QUEUE_URL=queue
        ),
        http=lambda: http,
        signing_secret=lambda: {"signing_secret": SECRET},
        redeliver_after=SoonerRedelivery(sqs, queue).after,
    )
    sqs.send_message(QueueUrl=queue, MessageBody=record()["body"])

    # When the poller runs until the queue is empty
    rounds = 0
    while Poller(sqs, queue, sender).round() and rounds < 10:
        rounds += 1

    # Then exactly three tries reached the shop, and the message waits in the DLQ, its body intact
    assert len(shop.received) == 3
    assert len({headers["webhook-id"] for _url, headers, _body in shop.received}) == 1
    [parked] = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert json.loads(parked["Body"])["webhook_id"] == "msg_1"
    assert SECRET not in parked["Body"]


def test_on_sqs_a_callback_that_succeeds_on_a_later_try_is_deleted(moto_aws):
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="callbacks")["QueueUrl"]
    from tidings.queues import SoonerRedelivery

    shop = Shop(500, 200)
    http = shop.client()
    sender = CallbackSender(
        settings=settings(CALLBACK_RETRY_BASE_SECONDS="0", CALLBACK_QUEUE_URL=queue),
        http=lambda: http,
        signing_secret=lambda: {"signing_secret": SECRET},
        redeliver_after=SoonerRedelivery(sqs, queue).after,
    )
    sqs.send_message(QueueUrl=queue, MessageBody=record()["body"])
    poller = Poller(sqs, queue, sender)
    while poller.round():
        pass
    assert len(shop.received) == 2
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)


def test_the_reference_verifies_within_its_tolerance_only():
    shop = Shop(200)
    sender, _ = sender_for(shop)
    sender.clock = lambda: time.time() - 600
    sender.handle([record()])
    [(_url, headers, content)] = shop.received
    with pytest.raises(Exception, match="too old"):
        Webhook(SECRET).verify(content.decode(), headers)
