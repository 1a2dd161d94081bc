"""The notify API handler, in-process, with moto behind it: validation, idempotency, status, bulk."""

import json
import re
import urllib.parse
import uuid

import boto3
import pytest
from support.notify_api import start_notify_api
from support.saga import create_table_from_template

from tidings.notifications import store as notification_store
from tidings.notifications.models import Notification, NotificationRequest
from tidings.observability import logger as tidings_logger
from tidings.saga.keys import notification_id_for
from tidings.saga.result_paths import outcome_inputs

pytestmark = pytest.mark.unit

VALID = {
    "order_reference": "order-2001",
    "customer": {"name": "Grace Hopper", "email": "grace@example.com", "phone": "+14155550123"},
    "payment": {"amount": 4200, "currency": "usd", "payment_method": "pm_card_visa"},
    "receipt": {"subject": "Receipt", "text": "Thanks for order 2001"},
    "sms": {"text": "Paid, thanks!"},
    "delivery_policy": {"email": "required"},
}


#: The template's routes, as API Gateway names them in the event (routeKey, pathParameters).
ROUTES = [
    (r"/notifications/bulk/(?P<bulk_id>[^/]+)", "/notifications/bulk/{bulk_id}"),
    (r"/notifications/bulk", "/notifications/bulk"),
    (r"/notifications/(?P<notification_id>[^/]+)/timeline", "/notifications/{notification_id}/timeline"),
    (r"/notifications/(?P<notification_id>[^/]+)", "/notifications/{notification_id}"),
]


def route_of(method, path):
    for pattern, template in ROUTES:
        matched = re.fullmatch(pattern, path)
        if matched:
            return f"{method} {template}", matched.groupdict() or None
    return f"{method} {path}", None


def http_event(method, path, body=None, *, sub="client-a", headers=None, raw_body=None, query=None):
    route_key, path_parameters = route_of(method, path)
    event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": urllib.parse.urlencode(query or {}),
        "headers": {"content-type": "application/json", **(headers or {})},
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": "127.0.0.1", "protocol": "HTTP/1.1"},
            "requestId": str(uuid.uuid4()),
            "stage": "$default",
            "routeKey": route_key,
            "authorizer": {"jwt": {"claims": {"sub": sub} if sub else {}, "scopes": None}},
        },
        "body": raw_body if raw_body is not None else (json.dumps(body) if body is not None else None),
        "isBase64Encoded": False,
    }
    if path_parameters:
        event["pathParameters"] = path_parameters
    if query:
        event["queryStringParameters"] = query
    return event


@pytest.fixture
def api(aws, monkeypatch):
    handler = start_notify_api(monkeypatch, rate_limit=True, bulk_queue=True, MAX_REQUEST_BYTES="8192")
    module, machine, queue_url = handler.module, handler.machine, handler.queue_url

    def call(event):
        return handler.call(event)

    call.raw = handler.invoke
    call.module = module
    call.machine = machine
    call.queue_url = queue_url
    yield call
    notification_store.get_store.cache_clear()


def executions(machine):
    return boto3.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]


def test_a_valid_request_is_accepted_and_starts_one_saga_named_after_the_notification(api):
    status, body = api(http_event("POST", "/notifications", VALID))
    assert status == 202
    assert body["status_url"] == f"/notifications/{body['notification_id']}"
    [execution] = executions(api.machine)
    assert execution["name"] == body["notification_id"]
    described = boto3.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    execution_input = json.loads(described["input"])
    # Contact details never travel through Step Functions: ids and the policy, and a null for each key
    # RecordOutcome selects (the step that runs overwrites its own)
    assert {key: value for key, value in execution_input.items() if value is not None} == {
        "notification_id": body["notification_id"],
        "delivery_policy": {"email": "required", "sms": "best_effort"},
        "request_id": execution_input["request_id"],
    }
    assert execution_input["request_id"]  # API Gateway's, as no X-Request-Id was sent
    assert set(execution_input) - {"notification_id", "delivery_policy", "request_id"} == set(
        outcome_inputs()
    )


def test_a_retried_request_returns_the_first_answer_and_starts_nothing_new(api):
    headers = {"idempotency-key": "retry-me"}
    first = api(http_event("POST", "/notifications", VALID, headers=headers))
    second = api(http_event("POST", "/notifications", VALID, headers=headers))
    assert first == second
    assert len(executions(api.machine)) == 1


def test_without_a_header_the_order_reference_is_the_idempotency_key(api):
    first = api(http_event("POST", "/notifications", VALID))
    second = api(http_event("POST", "/notifications", VALID))
    assert first[1]["notification_id"] == second[1]["notification_id"]
    assert len(executions(api.machine)) == 1


def test_the_same_key_for_a_different_request_is_refused(api):
    headers = {"idempotency-key": "k-1"}
    api(http_event("POST", "/notifications", VALID, headers=headers))
    changed = {**VALID, "payment": {**VALID["payment"], "amount": 9999}}
    status, body = api(http_event("POST", "/notifications", changed, headers=headers))
    assert status == 422
    assert body["code"] == "idempotency_key_reused"
    assert len(executions(api.machine)) == 1


def test_the_same_key_while_the_first_request_is_being_answered_is_told_to_retry(api, monkeypatch):
    # Given a submission that, while it is being stored, sees the same request come again
    service = api.module.api.service
    submit = service.submit
    repeated = []

    def submit_while_repeated(*args, **kwargs):
        repeated.append(
            api.raw(http_event("POST", "/notifications", VALID, headers={"idempotency-key": "k-2"}))
        )
        return submit(*args, **kwargs)

    monkeypatch.setattr(service, "submit", submit_while_repeated)
    # When the first request is sent
    status, _ = api(http_event("POST", "/notifications", VALID, headers={"idempotency-key": "k-2"}))
    # Then it is accepted, and the repeat was told to retry in a second without a second saga
    assert status == 202
    [answer] = repeated
    assert answer["statusCode"] == 409
    assert json.loads(answer["body"])["code"] == "idempotency_in_progress"
    assert answer["headers"]["Retry-After"] == "1"
    assert len(executions(api.machine)) == 1


def test_the_same_key_from_another_client_is_another_notification(api):
    first = api(http_event("POST", "/notifications", VALID, sub="client-a"))
    second = api(http_event("POST", "/notifications", VALID, sub="client-b"))
    assert first[1]["notification_id"] != second[1]["notification_id"]


def test_invalid_input_lists_every_problem_without_echoing_personal_data_and_starts_nothing(api):
    bad = {
        **VALID,
        "customer": {"name": "G", "email": "grace-at-example.com", "phone": "0044 7700 900123"},
        "payment": {"amount": -5, "currency": "xyz", "payment_method": "card_4242"},
    }
    status, body = api(http_event("POST", "/notifications", bad))
    assert status == 422
    assert body["code"] == "validation_error"
    locations = {tuple(error["loc"][1:]) for error in body["errors"]}
    assert {
        ("customer", "email"),
        ("customer", "phone"),
        ("payment", "amount"),
        ("payment", "currency"),
        ("payment", "payment_method"),
    } <= locations
    assert "grace-at-example.com" not in json.dumps(body)
    assert "7700" not in json.dumps(body)
    assert executions(api.machine) == []


def test_malformed_json_is_a_422_with_a_location(api):
    status, body = api(http_event("POST", "/notifications", raw_body="{not json"))
    assert status == 422
    assert body["errors"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"]
)
def test_a_body_that_is_not_json_is_refused_with_415_without_echoing_it(api, content_type):
    # curl -d without a Content-Type sends the JSON as a form: its whole text would become a field name.
    event = http_event("POST", "/notifications", VALID, headers={"content-type": content_type})
    status, body = api(event)
    assert status == 415
    assert body["code"] == "unsupported_media_type"
    assert "grace" not in json.dumps(body).lower()
    assert executions(api.machine) == []


def test_a_json_content_type_with_parameters_is_accepted(api):
    event = http_event(
        "POST", "/notifications", VALID, headers={"content-type": "application/json; charset=utf-8"}
    )
    status, _ = api(event)
    assert status == 202


def test_an_unknown_key_is_located_without_repeating_the_key(api):
    # An unknown key is the caller's own text: it may be an address, or a whole body pasted as a key.
    status, body = api(http_event("POST", "/notifications", {**VALID, "grace@example.com": 1}))
    assert status == 422
    extra = [error for error in body["errors"] if error["type"] == "extra_forbidden"]
    assert extra == [{"loc": ["body", "<key>"], "type": "extra_forbidden", "message": extra[0]["message"]}]
    assert "grace@example.com" not in json.dumps(body)


def test_an_oversize_body_is_refused_with_413_before_anything_starts(api):
    big = {**VALID, "receipt": {"subject": "Receipt", "text": "x" * 10_000}}
    status, body = api(http_event("POST", "/notifications", big))
    assert status == 413
    assert body["code"] == "payload_too_large"
    assert executions(api.machine) == []


def test_status_is_visible_to_its_owner_only_and_masks_contact_details(api):
    _, accepted = api(http_event("POST", "/notifications", VALID))
    path = f"/notifications/{accepted['notification_id']}"
    status, body = api(http_event("GET", path))
    assert status == 200
    assert body["customer"]["email"] == "g***@example.com"
    assert body["customer"]["name"] == "G*** H***"
    assert "Grace" not in json.dumps(body)
    assert "Thanks for order 2001" not in json.dumps(body)  # nor the receipt or SMS text
    assert "Paid, thanks!" not in json.dumps(body)
    assert body["customer"]["phone"].endswith("23")
    assert "5550" not in body["customer"]["phone"]
    assert body["execution_arn"].endswith(accepted["notification_id"])
    assert body["channels"]["email"]["policy"] == "required"
    assert api(http_event("GET", path, sub="client-b"))[0] == 404


def test_a_request_without_an_authenticated_subject_is_unauthorised(api):
    status, _body = api(http_event("POST", "/notifications", VALID, sub=None))
    assert status == 401
    assert executions(api.machine) == []


def test_bulk_accepts_valid_items_rejects_invalid_ones_and_queues_each_once(api):
    items = [{**VALID, "order_reference": f"bulk-{n}"} for n in range(3)]
    items.append({**VALID, "order_reference": "bulk-bad", "customer": {**VALID["customer"], "phone": "12"}})
    items.append({**VALID, "order_reference": "bulk-0"})  # same order twice in one request
    status, body = api(http_event("POST", "/notifications/bulk", {"items": items}))
    assert status == 202
    assert (body["accepted"], body["rejected"]) == (3, 1)
    assert body["items"][3]["errors"][0]["loc"] == ["items", 3, "customer", "phone"]
    assert body["items"][4] == {
        "index": 4,
        "status": "duplicate",
        "notification_id": body["items"][0]["notification_id"],
    }
    queued = boto3.client("sqs").receive_message(QueueUrl=api.queue_url, MaxNumberOfMessages=10)["Messages"]
    queued_ids = [nid for message in queued for nid in json.loads(message["Body"])["notification_ids"]]
    assert sorted(queued_ids) == sorted(item["notification_id"] for item in body["items"][:3])
    status, summary = api(http_event("GET", f"/notifications/bulk/{body['bulk_id']}"))
    assert status == 200
    assert summary["counts"] == {"accepted": 3, "rejected": 1, "duplicate": 1}
    assert api(http_event("GET", f"/notifications/bulk/{body['bulk_id']}", sub="client-b"))[0] == 404

    # Once one of them is delivered, the bulk's page counts and shows each item's own status
    first = body["items"][0]["notification_id"]
    boto3.resource("dynamodb").Table("notifications").update_item(
        Key={"pk": f"NOTIFICATION#{first}", "sk": "META"},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": "delivered"},
    )
    summary = api(http_event("GET", f"/notifications/bulk/{body['bulk_id']}"))[1]
    assert summary["counts"] == {"delivered": 1, "accepted": 2, "rejected": 1, "duplicate": 1}
    assert summary["items"][0] | {"notification_status": "delivered"} == summary["items"][0]
    assert summary["items"][0]["status_url"] == f"/notifications/{first}"


def test_the_openapi_document_describes_the_routes(api):
    status, document = api(http_event("GET", "/openapi.json"))
    assert status == 200
    assert {"/notifications", "/notifications/{notification_id}", "/notifications/bulk"} <= set(
        document["paths"]
    )
    assert "NotificationRequest" in json.dumps(document["components"])


def test_a_retried_bulk_request_queues_items_stored_but_not_started_by_the_failed_attempt(api):
    # Given an earlier attempt stored the items but failed before their sagas started
    items = [{**VALID, "order_reference": f"retry-{n}"} for n in range(2)]
    first = api(
        http_event("POST", "/notifications/bulk", {"items": items}, headers={"idempotency-key": "b-1"})
    )[1]
    sqs = boto3.client("sqs")
    for message in sqs.receive_message(QueueUrl=api.queue_url, MaxNumberOfMessages=10)["Messages"]:
        sqs.delete_message(QueueUrl=api.queue_url, ReceiptHandle=message["ReceiptHandle"])
    # When the client retries the same bulk request
    second = api(
        http_event("POST", "/notifications/bulk", {"items": items}, headers={"idempotency-key": "b-1"})
    )[1]
    # Then it is the same bulk, and its items are queued again for starting
    assert second["bulk_id"] == first["bulk_id"]
    queued = sqs.receive_message(QueueUrl=api.queue_url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(nid for m in queued for nid in json.loads(m["Body"])["notification_ids"]) == sorted(
        item["notification_id"] for item in first["items"]
    )


# --- one order, one charge ---------------------------------------------------------------------------


def set_status(notification_id, status):
    notification_store.NotificationStore(boto3.resource("dynamodb").Table("notifications")).set_status(
        notification_id, status
    )


def test_a_second_notification_for_a_charged_order_is_refused_with_a_link_to_the_first(api):
    first_status, first = api(http_event("POST", "/notifications", VALID, headers={"idempotency-key": "a"}))
    set_status(first["notification_id"], "delivered")
    status, body = api(http_event("POST", "/notifications", VALID, headers={"idempotency-key": "b"}))
    assert first_status == 202
    assert status == 409
    assert body["code"] == "order_already_charged"
    assert body["notification_id"] == first["notification_id"]
    assert body["status_url"] == first["status_url"]
    assert "grace" not in json.dumps(body).lower()
    assert len(executions(api.machine)) == 1


@pytest.mark.parametrize("in_flight", ["accepted", "running", "awaiting_payment_action", "failed"])
def test_an_order_still_charging_or_with_a_charge_that_may_stand_is_refused_too(api, in_flight):
    _, first = api(http_event("POST", "/notifications", VALID, headers={"idempotency-key": "a"}))
    set_status(first["notification_id"], in_flight)
    status, body = api(http_event("POST", "/notifications", VALID, headers={"idempotency-key": "b"}))
    assert status == 409
    assert body["notification_id"] == first["notification_id"]
    assert len(executions(api.machine)) == 1


@pytest.mark.parametrize("released", ["payment_declined", "payment_not_taken", "compensated"])
def test_an_order_whose_notification_holds_no_charge_may_be_charged_again(api, released):
    _, first = api(http_event("POST", "/notifications", VALID, headers={"idempotency-key": "a"}))
    set_status(first["notification_id"], released)
    status, second = api(http_event("POST", "/notifications", VALID, headers={"idempotency-key": "b"}))
    assert status == 202
    assert second["notification_id"] != first["notification_id"]
    # The new notification now holds the order: a third request is refused with a link to it.
    third_status, third = api(http_event("POST", "/notifications", VALID, headers={"idempotency-key": "c"}))
    assert third_status == 409
    assert third["notification_id"] == second["notification_id"]
    assert len(executions(api.machine)) == 2


def test_new_charge_true_charges_the_same_order_again(api):
    _, first = api(http_event("POST", "/notifications", VALID, headers={"idempotency-key": "a"}))
    set_status(first["notification_id"], "delivered")
    again = {**VALID, "new_charge": True}
    status, second = api(http_event("POST", "/notifications", again, headers={"idempotency-key": "b"}))
    assert status == 202
    assert second["notification_id"] != first["notification_id"]
    assert len(executions(api.machine)) == 2


def test_the_same_key_retried_after_a_second_order_request_still_gets_its_first_answer(api):
    first = api(http_event("POST", "/notifications", VALID, headers={"idempotency-key": "a"}))
    refused = api(http_event("POST", "/notifications", VALID, headers={"idempotency-key": "b"}))
    retried = api(http_event("POST", "/notifications", VALID, headers={"idempotency-key": "a"}))
    assert refused[0] == 409
    assert retried == first
    assert len(executions(api.machine)) == 1


def test_another_client_may_use_the_same_order_reference(api):
    first = api(http_event("POST", "/notifications", VALID, sub="shop-a", headers={"idempotency-key": "1"}))
    second = api(http_event("POST", "/notifications", VALID, sub="shop-b", headers={"idempotency-key": "2"}))
    assert first[0] == second[0] == 202


def test_an_order_stored_before_claims_or_by_a_bulk_request_is_found_through_the_order_index(api):
    status, bulk = api(http_event("POST", "/notifications/bulk", {"items": [VALID]}))
    [item] = bulk["items"]
    status, body = api(http_event("POST", "/notifications", VALID, headers={"idempotency-key": "single"}))
    assert status == 409
    assert body["notification_id"] == item["notification_id"]


def test_two_concurrent_requests_for_one_order_create_one_notification(aws):
    create_table_from_template("NotificationsTable", "notifications")
    store = notification_store.NotificationStore(boto3.resource("dynamodb").Table("notifications"))
    request = NotificationRequest.model_validate(VALID)
    first = Notification.accepted("n-1", "client-a", request, at=store.now())
    second = Notification.accepted("n-2", "client-a", request, at=store.now())
    # Both read "no holder" before either wrote: the transaction lets only one of them through.
    assert store.create_claiming_order(first).created
    claim = store.create_claiming_order(second)
    assert claim == notification_store.OrderClaim(created=False, holder="n-1")
    assert store.create_claiming_order(first) == notification_store.OrderClaim(created=False)
    with pytest.raises(notification_store.NotificationNotFound):
        store.get("n-2")
    # The claim item stays out of the listing indexes.
    listed = store.order_notifications("client-a", "order-2001")
    assert [item["notification_id"] for item in listed] == ["n-1"]


def test_a_valid_x_request_id_is_returned_and_logged(api, log_lines):
    event = http_event("POST", "/notifications", VALID, headers={"x-request-id": "client-req:42.a_b-c"})
    response = api.raw(event)
    assert response["statusCode"] == 202
    assert response["headers"]["X-Request-Id"] == "client-req:42.a_b-c"
    # the logger's correlation id for the rest of the call: every line it writes carries it
    assert tidings_logger.get_correlation_id() == "client-req:42.a_b-c"
    tidings_logger.info("probe")
    assert json.loads(log_lines.lines[-1])["correlation_id"] == "client-req:42.a_b-c"


def test_without_x_request_id_every_answer_carries_api_gateways_request_id(api):
    ok = http_event("GET", "/openapi.json")
    assert api.raw(ok)["headers"]["X-Request-Id"] == ok["requestContext"]["requestId"]
    refused = http_event("POST", "/notifications", {"order_reference": 1})
    answer = api.raw(refused)
    assert answer["statusCode"] == 422
    assert answer["headers"]["X-Request-Id"] == refused["requestContext"]["requestId"]
    form = http_event("POST", "/notifications", headers={"content-type": "text/plain"}, raw_body="a=b")
    assert api.raw(form)["headers"]["X-Request-Id"] == form["requestContext"]["requestId"]


@pytest.mark.parametrize(
    "value",
    ["", "a" * 129, "two words", "id\r\nX-Injected: yes", 'quote"d', "caf\u00e9", "nul\x00", "semi;colon"],
    ids=["empty", "too long", "space", "crlf injection", "quote", "non-ascii", "nul", "semicolon"],
)
def test_an_unsafe_x_request_id_is_400_and_starts_nothing(api, value):
    event = http_event("POST", "/notifications", VALID, headers={"x-request-id": value})
    response = api.raw(event)
    assert response["statusCode"] == 400
    body = json.loads(response["body"])
    assert body["code"] == "invalid_request_id"
    assert value not in response["body"] or value == ""
    assert response["headers"]["X-Request-Id"] == event["requestContext"]["requestId"]
    assert "X-Injected" not in json.dumps(response)
    assert executions(api.machine) == []


# --- strict input: no coercion, no unsafe characters, Stripe's currencies and minimums ----------------
def with_field(path, value):
    """VALID with one field replaced (``path`` like ``payment.amount``); ``...`` removes nothing."""
    body = json.loads(json.dumps(VALID))
    *parents, last = path.split(".")
    target = body
    for name in parents:
        target = target[name]
    target[last] = value
    return body


REFUSED_INPUT = [
    ("payment.amount", True, "int_type"),
    ("payment.amount", "1000", "int_type"),
    ("payment.amount", 1000.0, "int_type"),
    ("new_charge", "true", "bool_type"),
    ("new_charge", 1, "bool_type"),
    ("customer.phone", "+4477009\u0661\u0662\u0663\u0664", "value_error"),  # Arabic-Indic digits
    ("customer.phone", "+44770090\uff11\uff12\uff13", "value_error"),  # full-width digits
    ("payment.currency", "xau", "currency_not_supported"),  # ISO 4217 (gold), not a card currency
    ("payment.currency", "kwd", "currency_not_supported"),  # three-decimal: left out on purpose
    ("customer.name", "Grace\nBcc: x@example.com", "unsafe_character"),
    ("customer.name", "Grace\u202eesrever", "unsafe_character"),
    ("customer.name", "Grace\u2066Hopper", "unsafe_character"),
    ("receipt.subject", "Receipt\r\nX-Spam: 1", "unsafe_character"),
    ("receipt.text", "Thanks\x00", "unsafe_character"),
    ("receipt.text", "Thanks\x1b[31m", "unsafe_character"),
    ("receipt.text", "Thanks \u202e", "unsafe_character"),
    ("sms.text", "Paid\x07", "unsafe_character"),
    ("sms.text", "Paid \u2067", "unsafe_character"),
    ("receipt.html", "<img src=https://tracker.example/p.gif>", "extra_forbidden"),
]


@pytest.mark.parametrize(("path", "value", "error_type"), REFUSED_INPUT)
def test_strict_input_is_refused_with_a_422_that_names_the_field_and_starts_nothing(
    api, path, value, error_type
):
    status, body = api(http_event("POST", "/notifications", with_field(path, value)))
    assert status == 422, body
    assert body["code"] == "validation_error"
    assert [error["type"] for error in body["errors"]] == [error_type]
    assert body["errors"][0]["loc"][1:] == path.split(".")
    assert executions(api.machine) == []


def test_a_lone_surrogate_in_a_text_is_refused_rather_than_failing_the_send(api):
    raw = json.dumps(VALID).replace("Paid, thanks!", "Paid \\ud800")
    status, body = api(http_event("POST", "/notifications", raw_body=raw))
    assert status == 422
    [error] = body["errors"]
    assert error["loc"][1:] == ["sms", "text"]
    assert executions(api.machine) == []


@pytest.mark.parametrize(
    ("currency", "amount"), [("usd", 49), ("gbp", 29), ("jpy", 49), ("huf", 17_499), ("mxn", 999)]
)
def test_an_amount_below_stripes_minimum_for_its_currency_is_refused(api, currency, amount):
    body = with_field("payment", {**VALID["payment"], "currency": currency, "amount": amount})
    status, answer = api(http_event("POST", "/notifications", body))
    assert status == 422
    [error] = answer["errors"]
    assert (error["type"], error["loc"][1:]) == ("amount_below_minimum", ["payment"])
    assert currency in error["message"]
    assert executions(api.machine) == []


@pytest.mark.parametrize(
    ("currency", "amount"), [("usd", 50), ("GBP", 30), ("jpy", 50), ("isk", 1), ("vnd", 10_000)]
)
def test_an_amount_at_stripes_minimum_in_a_supported_currency_is_accepted(api, currency, amount):
    body = with_field("payment", {**VALID["payment"], "currency": currency, "amount": amount})
    status, _ = api(http_event("POST", "/notifications", body))
    assert status == 202


def test_line_breaks_and_tabs_are_allowed_in_bodies_and_rtl_text_everywhere(api):
    body = with_field("receipt", {"subject": "إيصال الطلب 2001", "text": "Line one\r\n\tLine two\n"})
    body["customer"]["name"] = "گریس هاپر"
    body["sms"]["text"] = "Paid.\nThanks!"
    status, _ = api(http_event("POST", "/notifications", body))
    assert status == 202


@pytest.mark.parametrize("route", ["/notifications", "/notifications/bulk"])
def test_a_deeply_nested_body_is_a_400_not_a_500_and_starts_nothing(api, route):
    deep = "[" * 3_000 + "]" * 3_000  # json.loads would raise RecursionError
    status, body = api(
        http_event("POST", route, raw_body=json.dumps({"items": "x"})[:-1] + ', "x": ' + deep + "}")
    )
    assert (status, body["code"]) == (400, "body_too_deep")
    assert executions(api.machine) == []


def test_brackets_inside_strings_do_not_count_as_nesting(api):
    body = with_field("receipt.text", '[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{{{ \\" [[[[')
    status, _ = api(http_event("POST", "/notifications", body))
    assert status == 202


def test_a_bulk_key_reused_with_other_items_is_a_422_as_on_the_single_route(api):
    # Given a bulk request sent with a key
    headers = {"idempotency-key": "bulk-key-1"}
    items = [{**VALID, "order_reference": "reuse-1"}]
    status, first = api(http_event("POST", "/notifications/bulk", {"items": items}, headers=headers))
    assert status == 202
    # When the same key comes with other items
    other = [{**VALID, "order_reference": "reuse-2"}]
    status, body = api(http_event("POST", "/notifications/bulk", {"items": other}, headers=headers))
    # Then it is refused as the single route refuses it, and nothing more is stored or queued
    assert status == 422
    assert body["code"] == "idempotency_key_reused"
    assert body["errors"] == [
        {"loc": ["header", "idempotency-key"], "type": "idempotency_key_reused", "message": "reused"}
    ]
    messages = boto3.client("sqs").receive_message(QueueUrl=api.queue_url, MaxNumberOfMessages=10)
    queued = [json.loads(m["Body"])["notification_ids"] for m in messages.get("Messages", [])]
    assert queued == [[first["items"][0]["notification_id"]]]
    # And the same items with the key reordered are the same request
    reordered = [{key: items[0][key] for key in reversed(list(items[0]))}]
    status, again = api(http_event("POST", "/notifications/bulk", {"items": reordered}, headers=headers))
    assert (status, again["bulk_id"]) == (202, first["bulk_id"])


# --- the per-client quota and the audit log (issue 11) -------------------------------------------


@pytest.fixture
def small_quota(api):
    """Two notifications at once per subject, one more every 2 s of the fake clock."""
    from tidings.api.quota import ClientQuota
    from tidings.resilience.rate_limit import DynamoDBBucketStore, TokenBucket
    from tidings.resilience.timing import FakeClock

    clock = FakeClock()
    store = DynamoDBBucketStore("rate-limit", boto3.client("dynamodb"))
    api.module.api.quota = ClientQuota(TokenBucket(rate=0.5, capacity=2), store, clock=clock)
    return clock


def order(n):
    return {**VALID, "order_reference": f"quota-{n}"}


def test_a_client_over_its_quota_gets_429_with_retry_after_and_others_are_not_held_back(api, small_quota):
    # Given a client that used its two tokens
    for n in range(2):
        assert api(http_event("POST", "/notifications", order(n)))[0] == 202
    # When it sends a third
    response = api.raw(http_event("POST", "/notifications", order(2)))
    # Then 429, machine-readable, with Retry-After, and nothing started for it
    body = json.loads(response["body"])
    assert response["statusCode"] == 429
    assert response["headers"]["Retry-After"] == "2"
    assert body["code"] == "quota_exceeded"
    assert body["retry_after_seconds"] == 2
    assert body["quota"] == {"per_second": 0.5, "burst": 2}
    assert len(executions(api.machine)) == 2
    # A retry of an accepted request is answered from its idempotency record and costs nothing
    assert api(http_event("POST", "/notifications", order(0)))[0] == 202
    # Another subject has its own bucket
    assert api(http_event("POST", "/notifications", order(3), sub="client-b"))[0] == 202
    # After Retry-After the client may send again
    small_quota.advance(2)
    assert api(http_event("POST", "/notifications", order(2)))[0] == 202


def test_bulk_items_count_against_the_quota(api, small_quota):
    items = [order(n) for n in range(2)]
    assert api(http_event("POST", "/notifications/bulk", {"items": items}))[0] == 202
    status, body = api(http_event("POST", "/notifications/bulk", {"items": [order(5)]}))
    assert (status, body["code"], body["requested"]) == (429, "quota_exceeded", 1)
    # More items than the whole bucket holds can never fit: 413, not a Retry-After that cannot help
    status, body = api(http_event("POST", "/notifications/bulk", {"items": [order(n) for n in range(3)]}))
    assert (status, body["code"]) == (413, "bulk_exceeds_quota")


def audit_records(**query):
    from tidings.audit import AuditLog

    log = AuditLog(lambda: boto3.resource("dynamodb").Table("audit"))
    if "subject" in query:
        return log.by_subject(query["subject"])
    return log.by_target(*query["target"])


def test_every_call_leaves_one_audit_record_without_personal_data(api, small_quota):
    # Given a send, a read of it, a read of someone else's, and a refused send
    headers = {"x-request-id": "shop-req-42"}
    _, sent = api(http_event("POST", "/notifications", order(0), headers=headers))
    notification_id = sent["notification_id"]
    api(http_event("GET", f"/notifications/{notification_id}", sub="client-a"))
    api(http_event("GET", f"/notifications/{notification_id}", sub="client-b"))
    api(http_event("POST", "/notifications", order(1)))
    api(http_event("POST", "/notifications", order(2)))  # over the quota

    # Then: who sent notification X?
    about = audit_records(target=("notification", notification_id))
    assert [(r.subject, r.action, r.status) for r in about] == [
        ("client-a", "notifications.create", 202),
        ("client-a", "notifications.get", 200),
        ("client-b", "notifications.get", 404),
    ]
    first = about[0]
    assert first.request_id == "shop-req-42"
    assert first.outcome == "ok"
    # What did client-a do? Four calls, the last refused by its quota
    mine = audit_records(subject="client-a")
    assert [(r.action, r.outcome, r.code) for r in mine] == [
        ("notifications.create", "ok", None),
        ("notifications.get", "ok", None),
        ("notifications.create", "ok", None),
        ("notifications.create", "refused", "quota_exceeded"),
    ]
    stored = json.dumps(boto3.resource("dynamodb").Table("audit").scan()["Items"], default=str)
    for personal in (VALID["customer"]["email"], VALID["customer"]["phone"], VALID["customer"]["name"]):
        assert personal not in stored


def test_the_audit_route_answers_by_notification_including_the_bulk_request_that_sent_it(api):
    _, bulk = api(http_event("POST", "/notifications/bulk", {"items": [order(0)]}, sub="shop-bulk"))
    notification_id = bulk["items"][0]["notification_id"]
    api(http_event("GET", f"/notifications/{notification_id}", sub="shop-bulk"))

    status, body = api(
        http_event("GET", "/audit", sub="operator-1", query={"notification_id": notification_id})
    )
    assert status == 200
    assert [(r["subject"], r["action"], r["target_kind"]) for r in body["records"]] == [
        ("shop-bulk", "bulk.create", "bulk"),
        ("shop-bulk", "notifications.get", "notification"),
    ]
    status, body = api(http_event("GET", "/audit", sub="operator-1", query={"subject": "shop-bulk"}))
    assert [r["action"] for r in body["records"]] == ["bulk.create", "notifications.get"]
    # The operator's own query is audited too, and a query must say what it is about
    status, body = api(http_event("GET", "/audit", sub="operator-1"))
    assert (status, body["code"]) == (400, "invalid_query")
    assert [r.action for r in audit_records(subject="operator-1")] == ["audit.query"] * 3


def test_a_bulk_requests_queue_messages_carry_its_request_id(api):
    items = [{**VALID, "order_reference": f"rid-{n}"} for n in range(2)]
    headers = {"x-request-id": "shop:bulk-7"}
    assert api(http_event("POST", "/notifications/bulk", {"items": items}, headers=headers))[0] == 202
    messages = boto3.client("sqs").receive_message(QueueUrl=api.queue_url, MaxNumberOfMessages=10)["Messages"]
    assert {json.loads(m["Body"])["request_id"] for m in messages} == {"shop:bulk-7"}


# --- templated receipts and SMS ---------------------------------------------------------------------

RECEIPT_DATA = {
    "customer_name": "Grace",
    "order_reference": "order-2001",
    "total": "$42.00",
    "items": [{"name": "Compiler manual", "quantity": 1, "price": "$42.00"}],
}
TEMPLATED = {
    **VALID,
    "receipt": {"template_id": "order_receipt", "dynamic_template_data": RECEIPT_DATA, "locale": "fr-CA"},
    "sms": {"template_id": "order_receipt", "dynamic_template_data": RECEIPT_DATA},
}


def test_a_templated_receipt_and_sms_are_accepted_and_stored_with_their_data(api):
    # When a notification names a template with data that fits it
    status, body = api(http_event("POST", "/notifications", TEMPLATED))
    # Then it is accepted, and the table keeps the template, its data and the locale asked for
    assert status == 202, body
    stored = notification_store.get_store().get(body["notification_id"])
    assert stored.receipt is not None
    assert (stored.receipt.template_id, stored.receipt.locale) == ("order_receipt", "fr-CA")
    assert stored.receipt.dynamic_template_data == RECEIPT_DATA
    assert stored.sms is not None
    assert stored.sms.template_id == "order_receipt"
    assert len(executions(api.machine)) == 1


@pytest.mark.parametrize(
    ("change", "code", "loc", "error_type"),
    [
        (
            {"receipt": {"template_id": "no_such_receipt"}},
            "template_not_found",
            ["receipt", "template_id"],
            "template_not_found",
        ),
        (
            {
                "receipt": {
                    "template_id": "order_receipt",
                    "dynamic_template_data": {**RECEIPT_DATA, "total": 42},
                }
            },
            "template_data_invalid",
            ["receipt", "dynamic_template_data", "total"],
            "string_type",
        ),
        (
            {
                "sms": {
                    "template_id": "order_receipt",
                    "dynamic_template_data": {
                        k: v for k, v in RECEIPT_DATA.items() if k != "order_reference"
                    },
                }
            },
            "template_data_invalid",
            ["sms", "dynamic_template_data", "order_reference"],
            "missing",
        ),
    ],
)
def test_a_missing_template_or_data_that_does_not_fit_is_a_422_before_anything_is_stored(
    api, change, code, loc, error_type
):
    # When the template is missing or its data does not fit its declared fields
    status, body = api(http_event("POST", "/notifications", {**TEMPLATED, **change}))
    # Then 422 with the code and where, never the data; nothing stored, no saga (so no charge)
    assert status == 422
    assert body["code"] == code
    assert [error["loc"] for error in body["errors"] if error["type"] == error_type] == [["body", *loc]]
    assert "Grace" not in json.dumps(body)
    assert "Compiler manual" not in json.dumps(body)
    assert executions(api.machine) == []
    with pytest.raises(notification_store.NotificationNotFound):
        notification_store.get_store().get(notification_id_for("client-a", VALID["order_reference"]))


@pytest.mark.parametrize(
    ("receipt", "error_type"),
    [
        ({"subject": "Receipt", "template_id": "order_receipt"}, "content_and_template"),
        ({"subject": "Receipt"}, "content_missing"),
        ({"subject": "R", "text": "T", "locale": "fr"}, "template_id_missing"),
        ({"template_id": "../order_receipt"}, "string_pattern_mismatch"),
    ],
)
def test_a_receipt_gives_its_content_or_a_template_not_both(api, receipt, error_type):
    status, body = api(http_event("POST", "/notifications", {**VALID, "receipt": receipt}))
    assert status == 422
    assert body["code"] == "validation_error"
    assert error_type in {error["type"] for error in body["errors"]}
    assert executions(api.machine) == []


def test_a_bulk_item_with_a_bad_template_is_rejected_alone(api):
    good = {**TEMPLATED, "order_reference": "bulk-t-1"}
    bad = {**TEMPLATED, "order_reference": "bulk-t-2", "receipt": {"template_id": "missing_template"}}
    status, body = api(http_event("POST", "/notifications/bulk", {"items": [good, bad]}))
    assert status == 202
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["items"][1]["errors"] == [
        {
            "loc": ["items", 1, "receipt", "template_id"],
            "type": "template_not_found",
            "message": "no such template",
        }
    ]
