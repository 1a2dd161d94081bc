"""What one delivered notification costs in AWS requests: every request a function makes, counted from
moto's own recording (its recorder), per function and operation, against an upper bound.

A count is deterministic where a timing is not: a change that adds a request per notification (a
second read of the same item, a cache that stopped caching) fails here. The bounds are the happy path's
counts with the e2e settings (breaker state read fresh, live configuration polled every second), plus
room only for what depends on the clock: a breaker window's older buckets are read once per 10 s bucket.
"""

import base64
import json
import re
import time
from collections import Counter
from urllib.parse import parse_qs

import httpx
import pytest
from support.e2e import order_body, wait_until_idle

pytestmark = pytest.mark.e2e

#: Per provider call (charge, e-mail, SMS): the breaker's state read (fresh, the e2e settings), its
#: window's older buckets at most once, the send's or charge's own writes; per invocation of a function
#: that reads live configuration, at most one poll.
_PROVIDER_STEP = {
    ("appconfig", "GET /configuration"): 1,
    ("dynamodb", "BatchGetItem"): 1,  # the breaker window's older buckets, once per 10 s bucket
}

#: (function, service, operation) -> the most requests one delivered notification may make.
BOUNDS: dict[tuple[str, str, str], int] = {
    # idempotency record (put, complete), the quota (read, write), order claim read and index query, the
    # notification and its claim in one transaction, started_at, the audit record, the execution
    ("NotifyApiFunction", "dynamodb", "PutItem"): 3,
    ("NotifyApiFunction", "dynamodb", "UpdateItem"): 2,
    ("NotifyApiFunction", "dynamodb", "GetItem"): 2,
    ("NotifyApiFunction", "dynamodb", "Query"): 1,
    ("NotifyApiFunction", "dynamodb", "TransactWriteItems"): 1,
    ("NotifyApiFunction", "states", "StartExecution"): 1,
    # the breaker's state, the bucket; running (answering with the notification), the charge (one write),
    # the breaker's count; the bucket's write, the intent's link, the timeline entry
    **{("ChargePaymentFunction", *key): count for key, count in _PROVIDER_STEP.items()},
    ("ChargePaymentFunction", "dynamodb", "GetItem"): 2,
    ("ChargePaymentFunction", "dynamodb", "UpdateItem"): 3,
    ("ChargePaymentFunction", "dynamodb", "PutItem"): 3,
    # the notification, the suppression list, the breaker's state, the bucket; the send record (put,
    # complete), the bucket's write, the breaker's count, the channel, the timeline entry
    **{
        (function, *key): count
        for function in ("SendEmailFunction", "SendSmsFunction")
        for key, count in _PROVIDER_STEP.items()
    },
    ("SendEmailFunction", "dynamodb", "GetItem"): 4,
    ("SendEmailFunction", "dynamodb", "PutItem"): 3,
    ("SendEmailFunction", "dynamodb", "UpdateItem"): 3,
    ("SendSmsFunction", "dynamodb", "GetItem"): 4,
    ("SendSmsFunction", "dynamodb", "PutItem"): 3,
    ("SendSmsFunction", "dynamodb", "UpdateItem"): 3,
    ("RecordOutcomeFunction", "dynamodb", "GetItem"): 1,
    ("RecordOutcomeFunction", "dynamodb", "UpdateItem"): 1,
    ("RecordOutcomeFunction", "dynamodb", "PutItem"): 1,
    # five provider webhooks (Stripe's succeeded, SendGrid's processed and delivered, Twilio's sent and
    # delivered), each: its idempotency record (put, complete), whether the notification is ours, its
    # timeline entry, the status it moves (not SendGrid's processed); Stripe's: the saga's waiting token
    ("WebhookReceiverFunction", "sqs", "SendMessageBatch"): 5,
    ("WebhookProcessorFunction", "dynamodb", "GetItem"): 6,
    ("WebhookProcessorFunction", "dynamodb", "PutItem"): 10,
    ("WebhookProcessorFunction", "dynamodb", "UpdateItem"): 9,
    # one event per channel change and the final status, batched as the table's stream delivers them
    ("PublishStatusEventsFunction", "events", "PutEvents"): 5,
}

WEBHOOK_STEPS = {"WebhookStripe", "WebhookSendgrid", "WebhookTwilio"}


#: How a request names a notification: its table keys (``NOTIFICATION#<id>``), anywhere in the body.
_NAMED = re.compile(r"NOTIFICATION#([0-9a-f-]{36})")


def _body(entry: dict) -> str:
    body = entry.get("body") or ""
    return base64.b64decode(body).decode(errors="replace") if entry.get("body_encoded") else body


def _about_another(entry: dict, notification_id: str) -> bool:
    """A request about some other notification: a saga an earlier test in this worker left running
    (parked, or finishing its last state) may move while this one is recorded; it is not this one's cost.
    Requests that name no notification (the breaker, the bucket, the configuration) all count."""
    named = set(_NAMED.findall(_body(entry)))
    return bool(named) and notification_id not in named


def _operation(entry: dict) -> tuple[str, str, str]:
    headers = {key.lower(): value for key, value in entry["headers"].items()}
    agent = next(
        (part[4:] for part in headers.get("user-agent", "").split() if part.startswith("app/")), "test"
    )
    credential = headers.get("authorization", "").split("Credential=")[-1].split("/")
    service = credential[3] if len(credential) > 3 else "?"
    if "x-amz-target" in headers:
        return agent, service, headers["x-amz-target"].rsplit(".", 1)[-1]
    action = parse_qs(_body(entry)).get("Action")
    if action:
        return agent, service, action[0]
    path = entry["url"].split("://", 1)[-1].split("/", 1)[-1].split("?")[0]
    return agent, service, f"{entry['method']} /{path.split('/')[0]}"


def _settled(system, notification_id: str) -> bool:
    """Delivered, both channels delivered, and every provider webhook in the timeline (read straight
    from the table: polling the API would add the notify API's own requests to the count)."""
    dynamodb = system.boto3_client("dynamodb")
    table = system.physical_id("NotificationsTable")
    pk = {":pk": {"S": f"NOTIFICATION#{notification_id}"}}
    items = dynamodb.query(
        TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues=pk, ConsistentRead=True
    )["Items"]
    meta = next((item for item in items if item["sk"]["S"] == "META"), {})
    channels = meta.get("channels", {}).get("M", {})
    statuses = [channels.get(name, {}).get("M", {}).get("status", {}).get("S") for name in ("email", "sms")]
    webhooks = [item for item in items if item.get("step", {}).get("S") in WEBHOOK_STEPS]
    return (
        meta.get("status", {}).get("S") == "delivered"
        and statuses == ["delivered"] * 2
        and len(webhooks) >= 5
    )


def _deliver(system, saga) -> str:
    response = saga.notify(order_body())
    assert response.status_code == 202, response.text
    notification_id = response.json()["notification_id"]
    deadline = time.monotonic() + 240
    while not _settled(system, notification_id):
        assert time.monotonic() < deadline, f"{notification_id} not delivered in time"
        time.sleep(0.3)
    wait_until_idle(system)
    time.sleep(2)  # the table's stream to the status events' publisher is polled, not queued
    return notification_id


def test_a_delivered_notification_costs_at_most_its_bounded_aws_requests(system, saga, tmp_path, monkeypatch):
    from moto import moto_api

    # Given a warm system (cold starts read secrets and open sessions once per container, not per
    # notification) and moto recording what it is asked into this test's own file. The webhook receiver
    # runs in one container here: with several, one that served no provider yet reads its signing secret
    # during the measured delivery, a cold-start cost the warm-up could not pay for it.
    receiver = system.runtime.pool("WebhookReceiverFunction")
    monkeypatch.setattr(receiver.spec, "max_concurrency", 1)
    receiver.recycle()
    _deliver(system, saga)
    monkeypatch.setattr(moto_api.recorder, "_location", str(tmp_path / "moto_recording"))
    recorder = f"{system.moto_url}/moto-api/recorder"
    httpx.post(f"{recorder}/reset-recording").raise_for_status()
    httpx.post(f"{recorder}/start-recording").raise_for_status()
    try:
        # When one notification is charged, e-mailed and texted, and every webhook of it processed
        notification_id = _deliver(system, saga)
    finally:
        httpx.post(f"{recorder}/stop-recording").raise_for_status()
    recording = httpx.get(f"{recorder}/download-recording").text
    entries = [json.loads(line) for line in recording.splitlines() if line.strip()]
    counts = Counter(_operation(entry) for entry in entries if not _about_another(entry, notification_id))
    made = {key: count for key, count in counts.items() if key[0] != "test"}
    for key, count in sorted(made.items()):
        print(*key, count)
    print("total", sum(made.values()))
    # Then no function made a request it has no bound for, nor more than its bound
    over = {key: (count, BOUNDS.get(key, 0)) for key, count in made.items() if count > BOUNDS.get(key, 0)}
    assert not over, f"more AWS requests than bounded (made, bound): {over}"
