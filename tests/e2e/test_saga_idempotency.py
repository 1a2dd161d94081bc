"""A retried or concurrent request with the same Idempotency-Key starts one saga and charges once."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from support.e2e import order_body

pytestmark = pytest.mark.e2e


def executions_named(system, notification_id):
    sfn = system.boto3_client("stepfunctions")
    machine = system.physical_id("NotificationSagaStateMachine")
    listed = sfn.list_executions(stateMachineArn=machine, maxResults=1000)["executions"]
    return [execution for execution in listed if execution["name"] == notification_id]


def charges_for(system, notification_id):
    return [
        request
        for request in system.sandboxes["stripe"].control.requests("/v1/payment_intents")
        if request["method"] == "POST" and notification_id in str(request.get("form") or request.get("body"))
    ]


def test_the_same_request_twice_returns_the_first_answer_and_charges_once(system, saga):
    key = f"key-{uuid.uuid4()}"
    body = order_body()
    first = saga.notify(body, **{"Idempotency-Key": key})
    result = saga.wait_for(first.json()["notification_id"])
    second = saga.notify(body, **{"Idempotency-Key": key})
    assert first.status_code == second.status_code == 202
    assert second.json() == first.json()
    assert result["status"] == "delivered"
    assert len(executions_named(system, result["notification_id"])) == 1
    assert len(charges_for(system, result["notification_id"])) == 1


def test_concurrent_requests_with_one_key_start_one_saga(system, saga):
    key = f"key-{uuid.uuid4()}"
    body = order_body()
    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(lambda _n: saga.notify(body, **{"Idempotency-Key": key}), range(5)))
    # Each answer is the accepted notification, or "in progress, retry" while the first is being stored
    assert {answer.status_code for answer in answers} <= {202, 409}
    accepted = {answer.json()["notification_id"] for answer in answers if answer.status_code == 202}
    assert len(accepted) == 1
    [notification_id] = accepted
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["code"] == "idempotency_in_progress"
            assert answer.headers["Retry-After"] == "1"
    assert saga.wait_for(notification_id)["status"] == "delivered"
    assert len(executions_named(system, notification_id)) == 1
    assert len(charges_for(system, notification_id)) == 1


def test_the_same_key_with_a_different_request_is_refused_and_starts_nothing(system, saga):
    key = f"key-{uuid.uuid4()}"
    first = saga.notify(order_body(), **{"Idempotency-Key": key})
    other = saga.notify(order_body(payment={"amount": 2600}), **{"Idempotency-Key": key})
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert saga.wait_for(first.json()["notification_id"])["status"] == "delivered"


def test_an_invalid_request_gets_a_list_of_problems_and_starts_nothing(system, saga):
    machine = system.physical_id("NotificationSagaStateMachine")
    sfn = system.boto3_client("stepfunctions")
    before = len(sfn.list_executions(stateMachineArn=machine, maxResults=1000)["executions"])
    answer = saga.notify(order_body(customer={"email": "nobody", "phone": "07700 900123"}))
    assert answer.status_code == 422
    assert {tuple(error["loc"][-2:]) for error in answer.json()["errors"]} == {
        ("customer", "email"),
        ("customer", "phone"),
    }
    assert len(sfn.list_executions(stateMachineArn=machine, maxResults=1000)["executions"]) == before


def test_every_route_requires_a_valid_token(system, saga):
    assert saga.http.post("/notifications", json=order_body()).status_code == 401
    bad = {"Authorization": "Bearer not-a-jwt"}
    assert saga.http.get("/notifications/anything", headers=bad).status_code == 401
    assert saga.http.get("/openapi.json").status_code == 401
    document = saga.http.get("/openapi.json", headers=saga.headers()).json()
    assert "/notifications/bulk" in document["paths"]
