"""The client against a mock transport: what it sends, what it retries and how long it waits, and which
typed error each refusal becomes. No network, no real waiting (the policy's sleep records)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from tidings_sdk import (
    Accepted,
    AlreadyRefunded,
    ApiError,
    BulkRejected,
    Customer,
    Forbidden,
    IdempotencyKeyReused,
    NotCancellable,
    NotCharged,
    NotFound,
    NotificationRequest,
    OrderAlreadyCharged,
    Payment,
    QuotaExceeded,
    RateLimited,
    RecipientSuppressed,
    RefundExceedsRemaining,
    RetryPolicy,
    SagaInProgress,
    ServerError,
    TidingsClient,
    TransportFailed,
    Unauthorized,
    UnexpectedAnswer,
    ValidationFailed,
)
from tidings_sdk.errors import error_for
from tidings_sdk.retry import retry_after_seconds

pytestmark = pytest.mark.unit

ACCEPTED = {
    "notification_id": "n-1",
    "order_reference": "order-1",
    "status": "running",
    "status_url": "/notifications/n-1",
    "execution_arn": "arn:aws:states:eu-west-1:123456789012:execution:saga:n-1",
}


def request() -> NotificationRequest:
    return NotificationRequest(
        order_reference="order-1",
        customer=Customer(name="Ada Lovelace", phone="+447700900123"),
        payment=Payment(amount=2599, currency="gbp", payment_method="pm_card_visa"),
    )


class Api:
    """A scripted API: answers in order, every request kept."""

    def __init__(self, *answers: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, sent: httpx.Request) -> httpx.Response:
        self.requests.append(sent)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer(sent) if callable(answer) else answer


def answer(status: int, body: object = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


@pytest.fixture
def waits() -> list[float]:
    return []


def client(api: Api, waits: list[float], **policy: object) -> TidingsClient:
    retry = RetryPolicy(sleep=waits.append, jitter=lambda _low, high: high, **policy)  # type: ignore[arg-type]
    return TidingsClient(
        "https://tidings.test", token="t0ken", retry=retry, transport=httpx.MockTransport(api)
    )


def test_create_sends_the_model_as_set_with_a_fresh_idempotency_key(waits):
    # Given an API that accepts
    api = Api(answer(202, ACCEPTED))

    # When a notification is created without a key
    accepted = client(api, waits).create_notification(request(), request_id="req-1")

    # Then the answer is typed, and the request carried the token, a key and only the fields set
    assert accepted == Accepted(**ACCEPTED)
    [sent] = api.requests
    assert (sent.method, sent.url.path) == ("POST", "/notifications")
    assert sent.headers["Authorization"] == "Bearer t0ken"
    assert sent.headers["X-Request-Id"] == "req-1"
    assert len(sent.headers["Idempotency-Key"]) == 36
    assert json.loads(sent.content) == {
        "order_reference": "order-1",
        "customer": {"name": "Ada Lovelace", "phone": "+447700900123"},
        "payment": {"amount": 2599, "currency": "gbp", "payment_method": "pm_card_visa"},
    }
    assert waits == []


def test_two_creates_get_two_keys_and_a_given_key_is_used(waits):
    api = Api(answer(202, ACCEPTED), answer(202, ACCEPTED), answer(202, ACCEPTED))
    tidings = client(api, waits)
    tidings.create_notification(request())
    tidings.create_notification(request())
    tidings.create_notification(request(), idempotency_key="mine-1")
    keys = [sent.headers["Idempotency-Key"] for sent in api.requests]
    assert keys[0] != keys[1]
    assert keys[2] == "mine-1"


def test_a_503_then_a_429_are_retried_with_the_same_key_and_retry_after_is_honoured(waits):
    # Given an API that is down once, then throttles with Retry-After: 3, then accepts
    api = Api(
        answer(503, {"message": "down", "code": "unavailable"}), answer(429, None, **{"Retry-After": "3"})
    )
    api.answers.append(answer(202, ACCEPTED))

    # When a notification is created
    accepted = client(api, waits, base_delay_seconds=0.5).create_notification(request())

    # Then it took three tries with one key: backoff after the 503, the server's 3 s after the 429
    assert accepted.notification_id == "n-1"
    assert len({sent.headers["Idempotency-Key"] for sent in api.requests}) == 1
    assert len(api.requests) == 3
    assert waits == [0.5, 3.0]


def test_backoff_doubles_up_to_its_cap_and_the_last_answer_is_raised(waits):
    api = Api(*[answer(500, {"message": "broken", "code": "internal_error"}) for _ in range(5)])
    with pytest.raises(ServerError) as raised:
        client(api, waits, max_attempts=5, base_delay_seconds=1, max_delay_seconds=3).get_notification("n-1")
    assert waits == [1, 2, 3, 3]
    assert raised.value.attempts == 5
    assert raised.value.status == 500
    assert raised.value.code == "internal_error"


def test_jitter_draws_within_the_backoff_cap():
    drawn = []
    policy = RetryPolicy(
        base_delay_seconds=2, max_delay_seconds=5, jitter=lambda low, high: drawn.append((low, high)) or 0
    )
    assert [policy.delay(n) for n in (1, 2, 3)] == [0, 0, 0]
    assert drawn == [(0.0, 2), (0.0, 4), (0.0, 5)]


def test_a_retry_after_longer_than_the_client_waits_is_raised_at_once(waits):
    body = {"message": "spent", "code": "quota_exceeded", "retry_after_seconds": 120, "requested": 1}
    body["quota"] = {"per_second": 10, "burst": 1000}
    api = Api(answer(429, body, **{"Retry-After": "120"}))
    with pytest.raises(QuotaExceeded) as raised:
        client(api, waits, max_delay_seconds=30).create_notification(request())
    assert waits == []
    assert raised.value.retry_after_seconds == 120
    assert raised.value.body.quota is not None
    assert raised.value.body.quota.burst == 1000
    assert isinstance(raised.value, RateLimited)


def test_an_idempotency_key_in_progress_is_waited_for(waits):
    busy = answer(409, {"message": "in progress", "code": "idempotency_in_progress"}, **{"Retry-After": "1"})
    api = Api(busy, answer(202, ACCEPTED))
    assert client(api, waits).create_notification(request(), idempotency_key="k").status == "running"
    assert waits == [1.0]
    assert [sent.headers["Idempotency-Key"] for sent in api.requests] == ["k", "k"]


def test_no_answer_is_retried_then_raised_as_transport_failed(waits):
    api = Api(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), answer(202, ACCEPTED))
    assert client(api, waits).create_notification(request()).notification_id == "n-1"
    assert len({sent.headers["Idempotency-Key"] for sent in api.requests}) == 1

    down = Api(*[httpx.ConnectError("refused") for _ in range(2)])
    with pytest.raises(TransportFailed) as raised:
        client(down, waits, max_attempts=2).get_timeline("n-1")
    assert raised.value.attempts == 2


def test_the_token_is_asked_for_on_every_try(waits):
    tokens = iter(["first", "second"])
    api = Api(answer(503, None), answer(200, {"items": [], "count": 0, "next_cursor": None}))
    tidings = TidingsClient(
        "https://tidings.test",
        token=lambda: next(tokens),
        retry=RetryPolicy(sleep=waits.append),
        transport=httpx.MockTransport(api),
    )
    tidings.list_notifications(status="delivered")
    assert [sent.headers["Authorization"] for sent in api.requests] == ["Bearer first", "Bearer second"]


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, {"message": "Unauthorized"}, Unauthorized),
        (403, {"message": "Forbidden"}, Forbidden),
        (404, {"message": "not found", "code": "not_found"}, NotFound),
        (422, {"message": "invalid", "code": "validation_error", "errors": []}, ValidationFailed),
        (422, {"message": "reused", "code": "idempotency_key_reused", "errors": []}, IdempotencyKeyReused),
        (418, "not json at all", ApiError),
    ],
)
def test_each_refusal_is_its_typed_error_and_is_not_retried(waits, status, body, error):
    api = Api(answer(status, body))
    with pytest.raises(error) as raised:
        client(api, waits).get_notification("n-1")
    assert type(raised.value) is error
    assert raised.value.status == status
    assert len(api.requests) == 1
    assert waits == []


def test_gateway_answers_without_a_code_get_one_from_their_status(waits):
    with pytest.raises(Forbidden) as raised:
        client(Api(answer(403, {"message": "Forbidden"})), waits).get_notification("n-1")
    assert raised.value.code == "forbidden"
    api = Api(*[answer(429, {"message": "Too Many Requests"}) for _ in range(2)])
    with pytest.raises(RateLimited) as throttled:
        client(api, waits, max_attempts=2).get_notification("n-1")
    assert throttled.value.code == "throttled"
    assert type(throttled.value) is RateLimited


def test_an_order_already_charged_names_the_first_notification(waits):
    body = {"message": "charged", "code": "order_already_charged", "notification_id": "n-0"}
    body["status_url"] = "/notifications/n-0"
    with pytest.raises(OrderAlreadyCharged) as raised:
        client(Api(answer(409, body)), waits).create_notification(request())
    assert (raised.value.notification_id, raised.value.status_url) == ("n-0", "/notifications/n-0")
    assert waits == []


def test_a_suppressed_recipient_says_which_channel_and_why(waits):
    body = {"message": "suppressed", "code": "recipient_suppressed", "channel": "sms", "reason": "opt_out"}
    with pytest.raises(RecipientSuppressed) as raised:
        client(Api(answer(422, body)), waits).create_notification(request())
    assert (raised.value.channel, raised.value.reason) == ("sms", "opt_out")
    assert isinstance(raised.value, ValidationFailed)


def test_a_bulk_request_with_every_item_rejected_raises_with_the_results(waits):
    error = {"loc": ["items", 0, "customer", "phone"], "type": "value_error", "message": "bad"}
    results = {
        "bulk_id": "b-1",
        "status_url": "/notifications/bulk/b-1",
        "accepted": 0,
        "rejected": 1,
        "items": [{"index": 0, "status": "rejected", "errors": [error]}],
    }
    api = Api(answer(422, results))
    with pytest.raises(BulkRejected) as raised:
        client(api, waits).create_bulk([{"order_reference": "x"}])
    assert raised.value.result.items[0].errors is not None
    assert raised.value.result.items[0].errors[0].loc == ["items", 0, "customer", "phone"]
    assert json.loads(api.requests[0].content) == {"items": [{"order_reference": "x"}]}
    assert "Idempotency-Key" in api.requests[0].headers


def test_ids_stay_one_path_segment_and_pages_are_followed(waits):
    page = {"items": [{"notification_id": "a", "channels": {}, "status_url": "/notifications/a"}], "count": 1}
    api = Api(answer(200, {**page, "next_cursor": "c2"}), answer(200, {**page, "next_cursor": None}))
    listed = list(client(api, waits).iter_notifications(order_reference="order-1", limit=1))
    assert [item.notification_id for item in listed] == ["a", "a"]
    assert api.requests[1].url.params["cursor"] == "c2"
    assert api.requests[1].url.params["order_reference"] == "order-1"

    lookup = Api(answer(404, {"message": "not found", "code": "not_found"}))
    with pytest.raises(NotFound):
        client(lookup, waits).get_notification("../audit")
    assert lookup.requests[0].url.raw_path == b"/notifications/..%2Faudit"


def test_a_success_that_is_not_the_documented_body_is_unexpected(waits):
    with pytest.raises(UnexpectedAnswer):
        client(Api(answer(202, {"surprise": True})), waits).create_notification(request())
    with pytest.raises(UnexpectedAnswer):
        client(Api(answer(200, ACCEPTED)), waits).create_notification(request())


def test_unknown_answer_fields_are_kept_and_unknown_request_fields_refused():
    accepted = Accepted.model_validate({**ACCEPTED, "added_later": 1})
    assert accepted.model_extra == {"added_later": 1}
    with pytest.raises(ValueError, match="extra"):
        NotificationRequest.model_validate({**request().model_dump(), "html": "<b>"})


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds("Wed, 02 Dec 2026 10:00:30 GMT", now=1_796_205_600.0) == 30
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("-4") == 0


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (409, "not_charged", NotCharged),
        (409, "already_refunded", AlreadyRefunded),
        (409, "saga_in_progress", SagaInProgress),
        (409, "already_finished", NotCancellable),
        (409, "not_waiting", NotCancellable),
        (422, "refund_exceeds_remaining", RefundExceedsRemaining),
    ],
)
def test_a_refused_refund_or_cancel_is_its_typed_error_and_is_not_retried(waits, status, code, error):
    body = {"message": "no", "code": code, "notification_id": "n-1", "status": "delivered", "remaining": 99}
    api = Api(answer(status, body))
    answered = client(api, waits).request("POST", "/notifications/n-1/refund", json={})
    raised = error_for(answered)
    assert type(raised) is error
    assert raised.code == code
    assert len(api.requests) == 1
    assert waits == []
    if isinstance(raised, RefundExceedsRemaining):
        assert raised.remaining == 99


REFUNDED = {
    "notification_id": "n-1",
    "status": "partially_refunded",
    "status_url": "/notifications/n-1",
    "refund": {"refund_id": "re_1", "amount": 500, "status": "succeeded"},
    "payment": {"amount": 2599, "currency": "gbp", "amount_refunded": 500, "remaining": 2099},
}


def test_a_refund_sends_its_amount_with_one_key_across_retries(waits):
    # Given an API down once, then refunding
    api = Api(answer(503, None), answer(200, REFUNDED))

    # When part of a payment is refunded
    refunded = client(api, waits).refund_notification("n-1", amount=500)

    # Then both tries carried the amount and the same key, and the answer is typed
    assert refunded.payment.remaining == 2099
    assert [json.loads(sent.content) for sent in api.requests] == [{"amount": 500}, {"amount": 500}]
    assert len({sent.headers["Idempotency-Key"] for sent in api.requests}) == 1
    assert api.requests[0].url.path == "/notifications/n-1/refund"

    # And a refund of all that remains sends an empty body, with the caller's key when it gives one
    whole = Api(answer(200, {**REFUNDED, "status": "refunded"}))
    client(whole, waits).refund_notification("n-1", idempotency_key="refund-all")
    assert json.loads(whole.requests[0].content) == {}
    assert whole.requests[0].headers["Idempotency-Key"] == "refund-all"


def test_a_cancel_answers_what_it_ended_and_a_refused_one_is_typed(waits):
    cancelling = {"notification_id": "n-1", "status": "cancelling", "status_url": "/notifications/n-1"}
    api = Api(answer(202, {**cancelling, "waited_for": "payment_action"}))
    assert client(api, waits).cancel_notification("n-1").waited_for == "payment_action"
    assert api.requests[0].url.path == "/notifications/n-1/cancel"
    assert "Idempotency-Key" in api.requests[0].headers
    with pytest.raises(NotCancellable) as refused:
        client(Api(answer(409, {"message": "no", "code": "already_finished"})), waits).cancel_notification(
            "n-1"
        )
    assert refused.value.code == "already_finished"
    with pytest.raises(NotCharged):
        client(Api(answer(409, {"message": "no", "code": "not_charged"})), waits).refund_notification("n-1")
