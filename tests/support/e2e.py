"""Helpers for the end-to-end tests: an AWS outage switch, the notify API client, execution history, and
a wait for the local system to go quiet."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from support.template import sam_template
from tidings.notifications.models import FINAL_STATUSES
from tidings_local.stack.retries import SHORT_RETRIES
from tidings_sdk import NO_RETRIES, TidingsClient

FINAL = {str(status) for status in FINAL_STATUSES}

#: The short retry policy of every local test run, and the shop's callbacks: a failed try is tried again
#: at once (the schedule itself is unit-tested). The 3-D Secure timeout path shortens its wait for itself
#: (short_payment_action_timeout).
FAST_SAGA = {
    **SHORT_RETRIES,
    "CallbackRetryBaseSeconds": "0",
    "CallbackMaxAttempts": "3",
    # A live configuration change reaches every container within a second (docs/configuration.md).
    "LiveConfigTtlSeconds": "1",
}


#: How long a test waits for a notification to reach a status: cold starts of every function on a busy
#: machine take a minute before the first saga ends. A deadline, never what a test measures.
WAIT_SECONDS = 180

#: A deadline for one request to the local API: it may cold-start Lambda containers, which takes seconds
#: on a busy machine (httpx's default of 5 s does not cover that). Never what a test measures.
API_TIMEOUT_SECONDS = 60


def api_post(url: str, **kwargs: Any) -> httpx.Response:
    """POST to the local API (a webhook route, say) with a generous deadline."""
    return httpx.post(url, timeout=API_TIMEOUT_SECONDS, **kwargs)


class AwsOutageSwitch:
    """A pass-through HTTP proxy to moto that can play an AWS service outage (503, as AWS answers).

    Pointed at by a function's per-service endpoint (AWS_ENDPOINT_URL_SESV2 / AWS_ENDPOINT_URL_SNS), so
    the provider layer's boto3 clients talk to it over real HTTP exactly as they would to AWS.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.down = False
        self.requests = 0
        switch = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                switch.requests += 1
                if switch.down:
                    payload = b'{"__type":"ServiceUnavailable","message":"Service is unavailable"}'
                    self.send_response(503)
                    self.send_header("x-amzn-ErrorType", "ServiceUnavailable")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                answer = httpx.request(
                    self.command, switch.upstream + self.path, headers=headers, content=body, timeout=30
                )
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "content-encoding",
                    ):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_DELETE = _forward  # noqa: N815 (http.server names)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def order_body(reference: str | None = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_reference": reference or f"order-{uuid.uuid4().hex[:12]}",
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+447700900123"},
        "payment": {"amount": 2599, "currency": "gbp", "payment_method": "pm_card_visa"},
        "receipt": {"subject": "Your receipt", "text": "Thank you for your order."},
        "sms": {"text": "Your order is paid. Thank you!"},
    }
    for key, value in overrides.items():
        body[key] = {**body[key], **value} if isinstance(value, dict) and key in body else value
    return body


class NotifyClient:
    """The notify API through the shops' SDK (``tidings_sdk``), with a real JWT from the local issuer.

    ``notify`` sends exactly what a test gives, once (no idempotency key made, no retry: tests assert the
    API's own answers, an ``idempotency_in_progress`` 409 among them); ``status`` reads through the SDK's
    typed model, so every end-to-end path also checks that the SDK reads what the API answers. ``http`` is
    the SDK's httpx client, for requests a test makes by hand (without a token, say).
    """

    def __init__(self, system: Any) -> None:
        self.system = system
        self.sdk = TidingsClient(
            system.api_url, token=system.token, retry=NO_RETRIES, timeout=API_TIMEOUT_SECONDS
        )
        self.http = self.sdk.http

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.system.token()}", **extra}

    def notify(self, body: dict[str, Any], **headers: str) -> httpx.Response:
        return self.sdk.request("POST", "/notifications", json=body, headers=headers)

    def status(self, notification_id: str) -> dict[str, Any]:
        """The notification as the SDK reads it, as the fields the API answered (nothing added)."""
        return self.sdk.get_notification(notification_id).model_dump(mode="json", exclude_unset=True)

    def wait_for(
        self, notification_id: str, statuses: set[str] = FINAL, timeout: float = WAIT_SECONDS
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            current = self.status(notification_id)
            if current["status"] in statuses:
                return current
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"still {current['status']} after {timeout}s: {json.dumps(current)[:2000]}"
                )
            time.sleep(0.2)

    def wait_for_channel(
        self, notification_id: str, channel: str, statuses: set[str], timeout: float = WAIT_SECONDS
    ) -> dict[str, Any]:
        """Wait until ``channel`` is in one of ``statuses``: a delivery webhook may be processed after
        the saga has ended, and its timeline entry is written before the channel's status."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.status(notification_id)
            status = current["channels"][channel]["status"]
            if status in statuses:
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"{channel} still {status} after {timeout}s")
            time.sleep(0.2)

    def wait_for_event(
        self, notification_id: str, step: str, outcome: str, timeout: float = WAIT_SECONDS
    ) -> dict[str, Any]:
        """Wait until the notification's timeline shows ``step`` with ``outcome``."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.status(notification_id)
            if any((event["step"], event["outcome"]) == (step, outcome) for event in current["timeline"]):
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"no {step}/{outcome} after {timeout}s")
            time.sleep(0.2)

    def run(self, body: dict[str, Any], **headers: str) -> dict[str, Any]:
        response = self.notify(body, **headers)
        assert response.status_code == 202, response.text
        return self.wait_for(response.json()["notification_id"])


#: The states ``definition.shaped_error`` puts in front of a park: Read<Step>Error, Parse<Step>ErrorCause,
#: Keep<Step>ErrorMessage.
ERROR_SHAPING_STATE = re.compile(r"Read\w+Error|Parse\w+ErrorCause|Keep\w+ErrorMessage")


class History:
    """A Step Functions execution's history: states entered, attempts per task state, final event."""

    def __init__(self, stepfunctions: Any, execution_arn: str, timeout: float = WAIT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while True:
            described = stepfunctions.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.status = described["status"]
        self.output = json.loads(described.get("output") or "null")
        events = stepfunctions.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        self.events = events
        self.entered: list[str] = []
        self.attempts: Counter[str] = Counter()
        current = None
        for event in events:
            if event["type"].endswith("StateEntered"):
                current = event["stateEnteredEventDetails"]["name"]
                self.entered.append(current)
            elif event["type"] in ("TaskScheduled", "LambdaFunctionScheduled") and current:
                self.attempts[current] += 1

    def retries(self, state: str) -> int:
        return self.attempts[state] - 1

    @property
    def path(self) -> list[str]:
        """The states entered, without those that only shape a caught error for a dead-letter body
        (``definition.shaped_error``): the saga's own steps, as a reader follows them in the console."""
        return [state for state in self.entered if not ERROR_SHAPING_STATE.fullmatch(state)]

    def path_contains(self, *states: str) -> bool:
        """Whether ``states`` were entered one right after the other (on ``path``)."""
        size, path = len(states), self.path
        return any(tuple(path[i : i + size]) == states for i in range(len(path) - size + 1))


def queue_messages(sqs: Any, queue_url: str, notification_id: str, wait: float = 10) -> list[dict[str, Any]]:
    """The bodies on ``queue_url`` that belong to the notification (peeked: visible again afterwards)."""
    deadline = time.monotonic() + wait
    found: dict[str, dict[str, Any]] = {}
    handles: list[str] = []
    while True:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=5)
        for message in answer.get("Messages", []):
            handles.append(message["ReceiptHandle"])
            body = json.loads(message["Body"])
            if body.get("notification_id") == notification_id:
                found[message["MessageId"]] = body
        if found or time.monotonic() > deadline:
            break
        if not answer.get("Messages"):
            time.sleep(0.3)
    for start in range(0, len(handles), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for n, handle in enumerate(handles[start : start + 10])
            ],
        )
    return list(found.values())


def polled_queues() -> list[str]:
    """The logical ids of the queues a function of the template consumes (its SQS event sources)."""
    queues = []
    for resource in sam_template()["Resources"].values():
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            if event.get("Type") == "SQS":
                queues.append(event["Properties"]["Queue"]["Fn::GetAtt"][0])
    return queues


def wait_until_idle(system: Any, timeout: float = 600, queues: list[str] | None = None) -> None:
    """Wait until the system has nothing left to do: no sandbox has a webhook delivery pending and every
    queue a function consumes is empty (none visible, in flight or delayed), twice in a row.

    A test that leaves work behind (a bulk run's thousands of delivery webhooks) calls this at its end,
    so the next test starts on a quiet system whatever order the tests run in. ``queues`` (logical ids)
    narrows the wait to the queues that test's own work goes through, so a message an earlier test parked
    with a long delay does not hold it up.
    """
    sqs = system.boto3_client("sqs")
    urls = [system.physical_id(logical_id) for logical_id in queues or polled_queues()]
    counters = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 2:
        for sandbox in system.sandboxes.values():
            sandbox.control.wait_for_webhooks(timeout=max(1.0, deadline - time.monotonic()))
        waiting = {
            url.rsplit("/", 1)[-1]: sum(
                int(value)
                for value in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=counters)[
                    "Attributes"
                ].values()
            )
            for url in urls
        }
        quiet = quiet + 1 if not any(waiting.values()) else 0
        if time.monotonic() > deadline:
            raise AssertionError(f"the system was still busy after {timeout} s: {waiting}")
        time.sleep(0.5)
