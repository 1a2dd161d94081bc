"""POST /notifications/{id}/refund and /cancel through the notify API in-process: moto tables, a Stripe
fake that keeps a charge's refunded amount and replays an idempotency key as Stripe does, and a fake
task-token resumer."""

import json
import uuid

import boto3
import pytest
from support.lambda_context import NotifyApiContext as Context
from support.saga import create_table_from_template, notification_request

from tidings.api.actions import ShopActions
from tidings.api.http import NotifyApi
from tidings.api.service import service_for
from tidings.api.settings import ApiSettings, load
from tidings.audit import audit_log_for
from tidings.notifications.models import Notification, NotificationStatus
from tidings.providers.models import PaymentResult, RefundableCharge, RefundResult
from tidings.saga.reconcile import Reconciler
from tidings.saga.steps import SagaSteps

pytestmark = pytest.mark.unit

CLIENT = "client-a"
PI = "pi_shop1"


class StripeCharges:
    """Stripe's refunds over one PaymentIntent: amount, partial refunds, the Idempotency-Key replay."""

    def __init__(self) -> None:
        self.status = "succeeded"
        self.amount = 2599
        self.refunded = 0
        self.refunds: list[RefundResult] = []
        self.by_key: dict[str, RefundResult] = {}
        self.cancels: list[str] = []

    def refundable(self, payment_intent_id: str) -> RefundableCharge:
        return RefundableCharge(
            payment_intent_id=payment_intent_id,
            status=self.status,
            amount=self.amount,
            currency="gbp",
            amount_refunded=self.refunded,
        )

    def refund(self, payment_intent_id: str, idempotency_key: str, amount: int | None = None) -> RefundResult:
        if idempotency_key in self.by_key:
            return self.by_key[idempotency_key]
        given = amount if amount is not None else self.amount - self.refunded
        assert 0 < given <= self.amount - self.refunded, "Stripe refuses amount_too_large"
        refund = RefundResult(
            refund_id=f"re_{len(self.refunds) + 1}",
            status="succeeded",
            payment_intent_id=payment_intent_id,
            amount=given,
        )
        self.refunded += given
        self.refunds.append(refund)
        self.by_key[idempotency_key] = refund
        return refund

    def retrieve(self, payment_intent_id: str) -> PaymentResult:
        return PaymentResult(
            payment_intent_id=payment_intent_id, status=self.status, amount=self.amount, currency="gbp"
        )

    def cancel(self, payment_intent_id: str, idempotency_key: str) -> PaymentResult:
        self.cancels.append(payment_intent_id)
        self.status = "canceled"
        return self.retrieve(payment_intent_id)


class Resumer:
    def __init__(self) -> None:
        self.failed: list[tuple[str, str]] = []
        self.resumed: list[tuple[str, dict]] = []

    def fail(self, task_token, error, cause):
        self.failed.append((task_token, error))
        return True

    def resume(self, task_token, output):
        self.resumed.append((task_token, dict(output)))
        return True


@pytest.fixture
def stripe():
    return StripeCharges()


@pytest.fixture
def resumer():
    return Resumer()


@pytest.fixture
def api(aws, monkeypatch, stripe, resumer):
    for logical_id, name in (
        ("NotificationsTable", "notifications"),
        ("IdempotencyTable", "idempotency"),
        ("AuditTable", "audit"),
        ("RateLimitTable", "rate-limit"),
    ):
        create_table_from_template(logical_id, name)
    monkeypatch.setenv("NOTIFICATIONS_TABLE", "notifications")
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "idempotency")
    monkeypatch.setenv("AUDIT_TABLE", "audit")
    monkeypatch.setenv("RATE_LIMIT_TABLE", "rate-limit")
    monkeypatch.setenv("STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:saga")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Tidings")
    settings = load(ApiSettings)
    service = service_for(settings)
    steps = SagaSteps(
        store=service.store,
        payment_gateway=lambda: stripe,
        email_channel=lambda _name: None,
        sms_channel=lambda _name: None,
    )
    actions = ShopActions(
        store=service.store, steps=steps, saga=resumer, reconciler=lambda: Reconciler(steps, resumer)
    )
    notify = NotifyApi(settings, service=lambda: service, actions=lambda: actions)

    def call(method, path, body=None, headers=None, sub=CLIENT):
        route = path.rsplit("/", 1)[-1]
        nid = path.split("/")[2]
        event = {
            "version": "2.0",
            "routeKey": f"{method} /notifications/{{notification_id}}/{route}",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"content-type": "application/json", **(headers or {})},
            "requestContext": {
                "http": {"method": method, "path": path, "sourceIp": "127.0.0.1", "protocol": "HTTP/1.1"},
                "requestId": str(uuid.uuid4()),
                "stage": "$default",
                "routeKey": f"{method} /notifications/{{notification_id}}/{route}",
                "authorizer": {"jwt": {"claims": {"sub": sub}, "scopes": ["notifications/write"]}},
            },
            "pathParameters": {"notification_id": nid},
            "body": json.dumps(body) if body is not None else None,
            "isBase64Encoded": False,
        }
        response = notify.handle(event, Context())
        return response["statusCode"], json.loads(response["body"])

    call.store = service.store
    return call


def notification(store, status, **fields):
    nid = str(uuid.uuid4())
    store.create(Notification.accepted(nid, CLIENT, notification_request(), at=store.now()))
    store.update(nid, status=NotificationStatus(status).value, **fields)
    return nid


def charged(store, status=NotificationStatus.DELIVERED):
    return notification(store, status, **{"payment.payment_intent_id": PI, "payment.status": "succeeded"})


def timeline(store, nid):
    return [(event.step, event.outcome) for event in store.timeline(nid)]


def audit_actions(nid):
    records = audit_log_for("audit", 400).by_target("notification", nid, 100)
    return [(record.action, record.status) for record in records]


# --- refund ------------------------------------------------------------------------------------------


def test_a_partial_then_a_full_refund_move_the_notification_to_partially_refunded_then_refunded(api, stripe):
    # Given a delivered notification whose charge Stripe holds
    nid = charged(api.store)
    # When the shop refunds part of it, then the rest
    status, first = api("POST", f"/notifications/{nid}/refund", {"amount": 599}, {"Idempotency-Key": "r-1"})
    assert status == 200
    assert first["status"] == "partially_refunded"
    assert first["refund"]["amount"] == 599
    assert first["payment"] == {"amount": 2599, "currency": "gbp", "amount_refunded": 599, "remaining": 2000}
    status, second = api("POST", f"/notifications/{nid}/refund", {}, {"Idempotency-Key": "r-2"})
    # Then Stripe refunded each part once, and the notification says what happened
    assert status == 200
    assert second["status"] == "refunded"
    assert second["refund"]["amount"] == 2000
    assert [refund.amount for refund in stripe.refunds] == [599, 2000]
    stored = api.store.get(nid)
    assert stored.status == NotificationStatus.REFUNDED
    assert (stored.payment.status, stored.payment.amount_refunded) == ("refunded", 2599)
    assert timeline(api.store, nid).count(("RefundPayment", "refunded")) == 2
    assert ("notifications.refund", 200) in audit_actions(nid)


def test_a_repeated_refund_with_the_same_key_gets_the_same_answer_and_refunds_once(api, stripe):
    nid = charged(api.store)
    first = api("POST", f"/notifications/{nid}/refund", {"amount": 500}, {"Idempotency-Key": "same"})
    again = api("POST", f"/notifications/{nid}/refund", {"amount": 500}, {"Idempotency-Key": "same"})
    assert first == again
    assert [refund.amount for refund in stripe.refunds] == [500]
    # The same key with another amount is refused, not answered with the first refund
    status, body = api("POST", f"/notifications/{nid}/refund", {"amount": 700}, {"Idempotency-Key": "same"})
    assert (status, body["code"]) == (422, "idempotency_key_reused")
    assert len(stripe.refunds) == 1


def test_a_refund_whose_answer_was_lost_is_replayed_at_stripe_not_made_twice(api, stripe):
    # Given a refund Stripe made under the shop's key, whose answer never reached the API's record
    nid = charged(api.store)
    api("POST", f"/notifications/{nid}/refund", {"amount": 500}, {"Idempotency-Key": "lost"})
    boto3.resource("dynamodb").Table("idempotency").delete_item(Key={"id": next(iter(_idempotency_ids()))})
    # When the shop sends it again
    status, body = api("POST", f"/notifications/{nid}/refund", {"amount": 500}, {"Idempotency-Key": "lost"})
    # Then Stripe's replay answers it: still one refund, and the total is Stripe's own
    assert status == 200
    assert len(stripe.refunds) == 1
    assert body["payment"]["amount_refunded"] == 500


def _idempotency_ids():
    return [item["id"] for item in boto3.resource("dynamodb").Table("idempotency").scan()["Items"]]


@pytest.mark.parametrize(
    ("status", "payment_intent", "stripe_status", "code"),
    [
        pytest.param(NotificationStatus.PAYMENT_DECLINED, None, None, "not_charged", id="declined"),
        pytest.param(NotificationStatus.PAYMENT_NOT_TAKEN, None, None, "not_charged", id="not-taken"),
        pytest.param(NotificationStatus.FAILED, PI, "canceled", "not_charged", id="stripe-says-canceled"),
        pytest.param(NotificationStatus.RUNNING, PI, "succeeded", "saga_in_progress", id="running"),
    ],
)
def test_a_refund_of_a_notification_never_charged_or_still_running_is_a_409(
    api, stripe, status, payment_intent, stripe_status, code
):
    fields = {"payment.payment_intent_id": payment_intent} if payment_intent else {}
    nid = notification(api.store, status, **fields)
    stripe.status = stripe_status or stripe.status
    answer_status, body = api("POST", f"/notifications/{nid}/refund", {})
    assert answer_status == 409
    assert body["code"] == code
    assert body["notification_id"] == nid
    assert body["status"] == status.value
    assert stripe.refunds == []
    assert ("notifications.refund", 409) in audit_actions(nid)


def test_a_partial_refund_above_what_remains_is_a_422_naming_the_remaining_amount(api, stripe):
    nid = charged(api.store)
    stripe.refunded = 2000  # refunded elsewhere (the Dashboard): Stripe's count is the one used
    status, body = api("POST", f"/notifications/{nid}/refund", {"amount": 600}, {"Idempotency-Key": "big"})
    assert (status, body["code"]) == (422, "refund_exceeds_remaining")
    assert (body["remaining"], body["amount_refunded"]) == (599, 2000)
    assert stripe.refunds == []
    # And once all is refunded, another refund is a 409
    stripe.refunded = 2599
    status, body = api("POST", f"/notifications/{nid}/refund", {}, {"Idempotency-Key": "more"})
    assert (status, body["code"]) == (409, "already_refunded")


def test_another_clients_notification_is_not_found(api, stripe):
    nid = charged(api.store)
    status, body = api("POST", f"/notifications/{nid}/refund", {}, sub="client-b")
    assert (status, body["code"]) == (404, "not_found")
    assert stripe.refunds == []


# --- cancel ------------------------------------------------------------------------------------------


def test_cancelling_a_saga_waiting_for_3ds_fails_its_task_and_a_repeat_answers_the_same(api, resumer):
    # Given a saga waiting for the customer's 3-D Secure
    nid = notification(api.store, NotificationStatus.RUNNING, **{"payment.payment_intent_id": PI})
    api.store.store_task_token(nid, "token-3ds")
    # When the shop cancels it
    status, body = api("POST", f"/notifications/{nid}/cancel", None, {"Idempotency-Key": "c-1"})
    # Then the waiting task fails with NotificationCancelled, and no webhook can resume it any more
    assert status == 202
    assert (body["status"], body["waited_for"]) == ("cancelling", "payment_action")
    assert resumer.failed == [("token-3ds", "NotificationCancelled")]
    stored = api.store.get(nid)
    assert stored.payment_task_token is None
    assert stored.cancel_requested_at
    assert ("CancelNotification", "cancelling") in timeline(api.store, nid)
    # A repeat with the key gets the first answer; one without reports the status it led to
    assert api("POST", f"/notifications/{nid}/cancel", None, {"Idempotency-Key": "c-1"}) == (status, body)
    status, plain = api("POST", f"/notifications/{nid}/cancel")
    assert (status, plain["status"]) == (202, "cancelling")
    assert len(resumer.failed) == 1
    assert ("notifications.cancel", 202) in audit_actions(nid)


def test_cancelling_a_saga_waiting_for_its_required_sms_fails_the_outage_wait(api, resumer):
    nid = charged(api.store, NotificationStatus.RUNNING)
    api.store.store_sms_task_token(nid, "token-sms")
    status, body = api("POST", f"/notifications/{nid}/cancel")
    assert (status, body["waited_for"]) == (202, "sms_outage_queue")
    assert resumer.failed == [("token-sms", "NotificationCancelled")]
    assert api.store.get(nid).sms_task_token is None


def test_cancelling_an_uncertain_charge_asks_stripe_refunds_what_it_took_and_ends_cancelled(
    api, stripe, resumer
):
    # Given a saga waiting for its uncertain charge to be reconciled (Stripe did take the payment)
    nid = notification(
        api.store,
        NotificationStatus.FAILED,
        status_reason="charge_outcome_unknown",
        **{"payment.payment_intent_id": PI},
    )
    api.store.store_charge_task_token(nid, "token-charge")
    status, body = api("POST", f"/notifications/{nid}/cancel")
    # Then it is refunded in full once, the saga is let finish, and the notification is cancelled
    assert (status, body["status"], body["waited_for"]) == (202, "cancelled", "charge_reconciliation")
    assert [refund.amount for refund in stripe.refunds] == [2599]
    [(token, output)] = resumer.resumed
    assert (token, output["decision"], output["status"]) == ("token-charge", "finished", "cancelled")
    stored = api.store.get(nid)
    assert (stored.status, stored.status_reason) == (NotificationStatus.CANCELLED, "cancelled_refunded")
    assert stored.charge_task_token is None


@pytest.mark.parametrize(
    ("status", "code"),
    [
        pytest.param(NotificationStatus.DELIVERED, "already_finished", id="finished"),
        pytest.param(NotificationStatus.RUNNING, "not_waiting", id="busy"),
    ],
)
def test_cancelling_a_notification_that_is_not_waiting_is_a_409(api, resumer, stripe, status, code):
    nid = charged(api.store, status)
    answer, body = api("POST", f"/notifications/{nid}/cancel")
    assert (answer, body["code"], body["status"]) == (409, code, status.value)
    assert resumer.failed == resumer.resumed == []
    assert stripe.refunds == stripe.cancels == []


# --- how the saga ends a cancelled wait ---------------------------------------------------------------

CANCELLED_ERROR = {"Error": "NotificationCancelled", "Cause": "{}"}
WAITING = {"ChargePaymentResult": {"status": "requires_action", "payment_intent_id": PI}}


def _decide(policy=None, **steps):
    from tidings.saga.outcome import OutcomeInput, decide

    policy = policy or {"email": "best_effort", "sms": "best_effort"}
    return decide(OutcomeInput.model_validate({"notification_id": "n-1", "delivery_policy": policy, **steps}))


def test_a_3ds_wait_cancelled_before_payment_ends_cancelled_with_nothing_sent():
    outcome = _decide(
        **WAITING,
        WaitForPaymentActionError=CANCELLED_ERROR,
        CancelPaymentResult={"outcome": "cancelled", "payment_intent_id": PI},
    )
    assert (outcome.status, outcome.reason) == (NotificationStatus.CANCELLED, "cancelled_before_payment")
    assert {channel.status.value for channel in outcome.channels.values()} == {"skipped"}


def test_a_3ds_wait_cancelled_after_the_customer_paid_is_refunded_and_ends_cancelled():
    outcome = _decide(
        **WAITING,
        WaitForPaymentActionError=CANCELLED_ERROR,
        CancelPaymentResult={"outcome": "already_succeeded", "payment_intent_id": PI},
        RefundPaymentResult={"refund_id": "re_1", "status": "succeeded"},
    )
    assert (outcome.status, outcome.reason) == (NotificationStatus.CANCELLED, "cancelled_refunded")


def test_a_cancelled_sms_wait_refunds_and_a_refund_that_failed_still_ends_failed():
    sent = {"provider": "sendgrid", "provider_message_id": "m", "deduplicated": False}
    policy = {"email": "best_effort", "sms": "required"}
    charged_state = {"ChargePaymentResult": {"status": "succeeded", "payment_intent_id": PI}}
    refunded = _decide(
        policy,
        **charged_state,
        SendReceiptEmailResult=sent,
        SendSmsError={"Error": "ProviderUnavailable"},
        SendSmsViaSnsError={"Error": "ProviderUnavailable"},
        SmsOutageError=CANCELLED_ERROR,
        RefundPaymentResult={"refund_id": "re_1", "status": "succeeded"},
    )
    assert (refunded.status, refunded.reason) == (NotificationStatus.CANCELLED, "cancelled_refunded")
    assert (refunded.channels["sms"].status.value, refunded.channels["sms"].reason) == (
        "skipped",
        "cancelled",
    )
    parked = _decide(
        policy,
        **charged_state,
        SendReceiptEmailResult=sent,
        SmsOutageError=CANCELLED_ERROR,
        ParkRefundResult={"message_id": "m-1"},
    )
    assert (parked.status, parked.reason) == (NotificationStatus.FAILED, "refund_failed")


def test_the_state_machine_refunds_a_cancelled_3ds_payment_that_succeeded_at_the_last_moment():
    from tidings.saga.definition import build

    check = build()["States"]["CheckCancellation"]
    [refund_rule, receipt_rule] = check["Choices"]
    assert refund_rule["Next"] == "RefundPayment"
    assert {"Variable": "$.WaitForPaymentActionError.Error", "StringEquals": "NotificationCancelled"} in (
        refund_rule["And"]
    )
    assert receipt_rule["Next"] == "SendReceiptEmail"
    assert check["Default"] == "RecordOutcome"


# --- the required SMS's wait, as RetryDelivery keeps it ---------------------------------------------------


def test_retry_delivery_keeps_the_sms_waits_token_for_a_cancel_and_drops_the_message_once_cancelled(
    steps, store, channels
):
    from support.saga import unavailable

    from tidings.saga.redelivery import ParkedMessage, Redelivery, RedeliveryPolicy, RetryLater

    class Saga:
        def __init__(self) -> None:
            self.calls: list[str] = []

        def resume(self, task_token, output):
            self.calls.append("resume")
            return True

        def fail(self, task_token, error, cause):
            self.calls.append(error)
            return True

    saga = Saga()
    worker = Redelivery(
        steps=steps,
        policy=RedeliveryPolicy(max_tries=3, base_delay_seconds=10, max_delay_seconds=25),
        saga=saga,  # type: ignore[arg-type]
        sqs=lambda: None,
        dead_letter_queue_urls={"email": "email-dlq", "sms": "sms-dlq"},
    )
    nid = charged(store, NotificationStatus.RUNNING)
    message = ParkedMessage(notification_id=nid, channel="sms", task_token="token-sms")
    # Given a first try that fails (both SMS providers still down)
    channels["twilio"].failures.append(unavailable("twilio"))
    channels["sns"].failures.append(unavailable("sns"))
    with pytest.raises(RetryLater):
        worker.handle(message, 1, lambda _seconds: None)
    # Then the wait's token is on the notification, where the shop's cancel finds it
    assert store.get(nid).sms_task_token == "token-sms"
    # When the shop cancels (the token is taken away, the notification is cancelling)
    assert store.begin_cancel(nid, "sms_task_token", "token-sms")
    # Then the next try sends nothing and leaves the saga to the cancel
    assert worker.handle(message, 2, lambda _seconds: None) == "dropped"
    assert channels["twilio"].sent == channels["sns"].sent == []
    assert saga.calls == []
    assert store.get(nid).sms_task_token is None
