"""GET /notifications (filters, paging, the caller's own only) and GET /notifications/{id}/timeline."""

import json
import urllib.parse
import uuid

import boto3
import pytest
from support.lambda_context import NotifyApiContext as Context
from support.notify_api import start_notify_api

from tidings.api.queries import encode_cursor
from tidings.notifications.store import NotificationStore

pytestmark = pytest.mark.unit


def get(path, params=None, *, sub="client-a"):
    query = urllib.parse.urlencode(params or {})
    return {
        "version": "2.0",
        "routeKey": f"GET {path}",
        "rawPath": path,
        "rawQueryString": query,
        "queryStringParameters": dict(params) if params else None,
        "headers": {},
        "requestContext": {
            "http": {"method": "GET", "path": path, "sourceIp": "127.0.0.1", "protocol": "HTTP/1.1"},
            "requestId": str(uuid.uuid4()),
            "stage": "$default",
            "routeKey": f"GET {path}",
            "authorizer": {"jwt": {"claims": {"sub": sub} if sub else {}, "scopes": None}},
        },
        "isBase64Encoded": False,
    }


@pytest.fixture
def api(aws, monkeypatch):
    handler = start_notify_api(monkeypatch)
    table, module = handler.table, handler.module

    def call(event):
        return handler.call(event)

    call.table = table
    call.module = module
    call.store = NotificationStore(table)
    return call


def put(api, n, *, client="client-a", status="delivered", email="delivered", sms="delivered", bulk=None):
    item = {
        "pk": f"NOTIFICATION#n-{client}-{n}",
        "sk": "META",
        "notification_id": f"n-{client}-{n}",
        "client_id": client,
        "order_reference": f"order-{n}",
        "status": status,
        "created_at": f"2026-03-01T10:{n:02d}:00.000Z",
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+447700900123"},
        "payment": {
            "amount": 2599,
            "currency": "gbp",
            "payment_method": "pm_card_visa",
            "status": "succeeded",
        },
        "receipt": {"subject": "Receipt", "text": "Thank you"},
        "sms": {"text": "Paid, thank you"},
        "channels": {
            "email": {"policy": "best_effort", "status": email, "provider": "sendgrid"},
            "sms": {"policy": "best_effort", "status": sms, "provider": "twilio"},
        },
    }
    if bulk:
        item["bulk_id"] = bulk
    api.table.put_item(Item=item)
    return item


def ids(body):
    return [item["notification_id"] for item in body["items"]]


def test_a_client_sees_only_its_own_notifications_newest_first_without_contact_details(api):
    # Given three notifications of client-a and one of client-b
    for n in range(3):
        put(api, n)
    put(api, 9, client="client-b")
    # When client-a lists its notifications
    status, body = api(get("/notifications"))
    # Then it gets its own three, newest first, with statuses and no personal data
    assert status == 200
    assert ids(body) == ["n-client-a-2", "n-client-a-1", "n-client-a-0"]
    assert body["next_cursor"] is None
    text = json.dumps(body)
    assert "ada@example.com" not in text
    assert "Ada" not in text
    assert "+447700900123" not in text
    assert body["items"][0]["channels"]["email"] == {
        "policy": "best_effort",
        "status": "delivered",
        "provider": "sendgrid",
    }


def test_an_order_reference_finds_its_notification_only_for_its_owner(api):
    put(api, 1)
    put(api, 2)
    put(api, 1, client="client-b")  # the same order reference at another client
    status, body = api(get("/notifications", {"order_reference": "order-1"}))
    assert status == 200
    assert ids(body) == ["n-client-a-1"]
    status, body = api(get("/notifications", {"order_reference": "order-2"}, sub="client-b"))
    assert (status, body["items"]) == (200, [])


def test_status_channel_status_bulk_and_time_filters(api):
    put(api, 1, status="partially_delivered", email="dead_lettered")
    put(api, 2, status="delivered", sms="parked", bulk="bulk-1")
    put(api, 3, status="delivered", bulk="bulk-1")
    put(api, 4, status="failed", email="failed")
    assert ids(api(get("/notifications", {"status": "partially_delivered"}))[1]) == ["n-client-a-1"]
    assert ids(api(get("/notifications", {"email_status": "dead_lettered"}))[1]) == ["n-client-a-1"]
    assert ids(api(get("/notifications", {"sms_status": "parked"}))[1]) == ["n-client-a-2"]
    assert ids(api(get("/notifications", {"bulk_id": "bulk-1"}))[1]) == ["n-client-a-3", "n-client-a-2"]
    in_range = {"created_since": "2026-03-01T10:02:00Z", "created_until": "2026-03-01T10:03:00Z"}
    assert ids(api(get("/notifications", in_range))[1]) == ["n-client-a-3", "n-client-a-2"]
    both = {"bulk_id": "bulk-1", "status": "delivered", "sms_status": "parked"}
    assert ids(api(get("/notifications", both))[1]) == ["n-client-a-2"]


def test_the_cursor_pages_through_every_notification_once(api):
    for n in range(7):
        put(api, n)
    put(api, 5, client="client-b")
    seen, params, pages = [], {"limit": "3"}, 0
    while True:
        status, body = api(get("/notifications", params))
        assert status == 200
        assert body["count"] <= 3
        seen.extend(ids(body))
        pages += 1
        if not body["next_cursor"]:
            break
        params = {"limit": "3", "cursor": body["next_cursor"]}
    assert seen == [f"n-client-a-{n}" for n in reversed(range(7))]
    assert pages == 3


@pytest.mark.parametrize(
    "params",
    [
        {"status": "lost"},
        {"email_status": "maybe"},
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "many"},
        {"created_since": "yesterday"},
        {"order_reference": "x" * 200},
        {"bulk_id": "b" * 65},
    ],
)
def test_bad_filters_are_a_422_listing_what_is_wrong(api, params):
    status, body = api(get("/notifications", params))
    assert status == 422
    assert body["code"] == "validation_error"
    assert body["errors"]
    assert all(error["loc"][0] == "query" for error in body["errors"])


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor!"},
        {"cursor": "eyJpIjoiQnlDbGllbnQifQ"},  # {"i":"ByClient"}: no key
        {"created_since": "2026-03-02T00:00:00Z", "created_until": "2026-03-01T00:00:00Z"},
    ],
)
def test_a_cursor_that_is_not_ours_or_an_empty_range_is_a_400(api, params):
    put(api, 1)
    status, body = api(get("/notifications", params))
    assert status == 400
    assert body["code"] == "invalid_query"
    assert body["errors"][0]["loc"][0] == "query"


def test_a_cursor_cannot_be_bent_to_read_another_clients_notifications(api):
    other = put(api, 1, client="client-b")
    forged = encode_cursor("ByClient", other)  # client-b's own key, presented by client-a
    status, body = api(get("/notifications", {"cursor": forged}))
    assert (status, body["code"]) == (400, "invalid_query")


def test_listing_needs_an_authenticated_subject(api):
    status, body = api(get("/notifications", sub=None))
    assert (status, body["code"]) == (401, "unauthorized")


def test_the_timeline_route_answers_only_the_owner(api):
    put(api, 1)
    status, body = api(get("/notifications/n-client-a-1/timeline"))
    assert status == 200
    assert body["notification_id"] == "n-client-a-1"
    assert [entry["order"] for entry in body["entries"]] == list(range(1, len(body["entries"]) + 1))
    assert body["entries"][-1]["source"] == "outcome"
    assert api(get("/notifications/n-client-a-1/timeline", sub="client-b"))[0] == 404
    assert api(get("/notifications/nope/timeline"))[0] == 404
    assert api(get("/notifications/" + "x" * 65 + "/timeline"))[0] == 422


# --- the OpenAPI document and Swagger UI ---------------------------------------------------------------
DOCUMENTED = {
    ("/notifications", "post"): {"202", "400", "401", "403", "409", "413", "415", "422", "429"},
    ("/notifications", "get"): {"200", "400", "401", "403", "422"},
    ("/notifications/{notification_id}", "get"): {"200", "401", "403", "404", "422"},
    ("/notifications/{notification_id}/timeline", "get"): {"200", "401", "403", "404", "422"},
    ("/notifications/bulk", "post"): {"202", "400", "401", "403", "413", "415", "422", "429"},
    ("/notifications/bulk/{bulk_id}", "get"): {"200", "401", "403", "404", "422"},
    ("/audit", "get"): {"200", "400", "401", "403", "422", "503"},
}


def openapi_document(api):
    status, document = api(get("/openapi.json"))
    assert status == 200
    return document


def test_every_route_documents_its_answers_and_the_bearer_scheme(api):
    document = openapi_document(api)
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert document["security"] == [{"bearerAuth": []}]
    for (path, method), statuses in DOCUMENTED.items():
        assert set(document["paths"][path][method]["responses"]) == statuses, (path, method)


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/notifications", {"limit": "0"}, 422),
        ("/notifications", {"cursor": "nope!"}, 400),
        ("/notifications/unknown", None, 404),
        ("/notifications/unknown/timeline", None, 404),
    ],
)
def test_the_documented_error_body_is_the_one_returned(api, path, params, status):
    import jsonschema

    document = openapi_document(api)
    template = path.replace("unknown", "{notification_id}")
    documented = document["paths"][template]["get"]["responses"][str(status)]
    schema = documented["content"]["application/json"]["schema"]
    answered, body = api(get(path, params))
    assert answered == status
    jsonschema.validate(body, {**schema, "components": document["components"]})
    error_body = document["components"]["schemas"]["ErrorBody"]
    assert set(error_body["required"]) == {"message", "code"}


def test_swagger_ui_is_served_without_a_token_and_with_its_assets_inlined(api):
    response = api.module.lambda_handler(get("/swagger", sub=None), Context())
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"].startswith("text/html")
    html = response["body"]
    assert "SwaggerUIBundle" in html
    assert "cdn.jsdelivr.net" not in html
    assert "bearerAuth" in html


def test_an_audit_log_that_cannot_be_read_is_a_typed_503_the_document_describes(api):
    import jsonschema

    # Given the audit table gone (or refusing)
    boto3.client("dynamodb").delete_table(TableName="audit")
    # When an operator asks for a subject's records
    status, body = api(get("/audit", {"subject": "client-a"}))
    # Then a 503 with a machine-readable code, as the OpenAPI document says
    assert status == 503
    assert body == {"message": "the audit log could not be read; try again", "code": "audit_unavailable"}
    document = openapi_document(api)
    schema = document["paths"]["/audit"]["get"]["responses"]["503"]["content"]["application/json"]["schema"]
    jsonschema.validate(body, {**schema, "components": document["components"]})


def test_the_gateways_own_401_body_is_the_one_the_document_describes(api):
    import jsonschema

    document = openapi_document(api)
    for (path, method), _statuses in DOCUMENTED.items():
        schema = document["paths"][path][method]["responses"]["401"]["content"]["application/json"]["schema"]
        full = {**schema, "components": document["components"]}
        # What API Gateway's JWT authorizer (and the local gateway) answers before the function runs
        jsonschema.validate({"message": "Unauthorized"}, full)
        # and what the function answers for a token without a subject
        jsonschema.validate({"message": "Unauthorized", "code": "unauthorized"}, full)
