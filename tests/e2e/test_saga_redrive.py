"""Dead-lettered work goes back through the same path once the cause is fixed, and a required SMS holds
its saga on the outage queue until it is sent or given up."""

import json

import httpx
import pytest
from support.e2e import History, order_body, queue_messages

from tidings.saga.keys import charge_key
from tidings_local.sandboxes.credentials import STRIPE_API_KEY
from tidings_ops.dlq import DeadLetterQueues

pytestmark = pytest.mark.e2e

STACK = "tidings-local"  # the local system's stack name (queue names are <stack>-<LogicalId>)


def test_a_dead_lettered_receipt_is_redriven_and_delivered_once_sendgrid_is_back(system, saga):
    # Given both e-mail providers down: the best-effort receipt is dead-lettered
    system.sandboxes["sendgrid"].control.inject_fault("outage", path_prefix="/v3/mail/send")
    system.outage["ses"].down = True
    result = saga.run(order_body())
    assert result["status"] == "partially_delivered"
    sqs = system.boto3_client("sqs")
    [parked] = queue_messages(sqs, system.physical_id("EmailDeadLetterQueue"), result["notification_id"])
    # Its body carries SES's error as type and message, never the Lambda runtime's stack trace
    assert parked["error"]["Error"] in ("ProviderUnavailable", "CircuitOpen")
    assert parked["error"]["Cause"].startswith("ses: ")  # the message, not the runtime's JSON
    assert "stackTrace" not in json.dumps(parked)

    # When the providers recover and an operator redrives the e-mail dead-letter queue
    system.sandboxes["sendgrid"].control.clear_faults()
    system.outage["ses"].down = False
    moved = DeadLetterQueues(sqs, STACK).redrive("email")
    assert moved["to"] == system.physical_id("EmailRetryQueue")
    assert result["notification_id"] in {message["notification_id"] for message in moved["messages"]}

    # Then RetryDelivery sends it through the same path and the notification is complete
    final = saga.wait_for(result["notification_id"], {"delivered_with_fallback"}, timeout=30)
    assert final["channels"]["email"]["status"] in ("sent", "delivered")
    # Exactly one receipt for this notification (the redrive also moved other tests' parked receipts)
    sent = [
        r
        for r in system.sandboxes["sendgrid"].control.requests("/v3/mail/send")
        if r["status"] == 202 and result["notification_id"] in json.dumps(r["json"])
    ]
    assert len(sent) == 1


def test_a_refund_case_is_redriven_and_settled_once_stripe_refunds_again(system, saga):
    # Given a required receipt that cannot be sent and refunds that keep failing
    system.sandboxes["sendgrid"].control.inject_fault("outage", path_prefix="/v3/mail/send")
    system.outage["ses"].down = True
    system.sandboxes["stripe"].control.inject_fault("outage", path_prefix="/v1/refunds")
    result = saga.run(order_body(delivery_policy={"email": "required"}))
    assert result["status"] == "failed"

    # When Stripe recovers and the compensation dead-letter queue is redriven
    system.sandboxes["stripe"].control.clear_faults()
    _close_stripe_breaker(system)
    DeadLetterQueues(system.boto3_client("sqs"), STACK).redrive("compensation")

    # Then ReconcilePayment refunds once, with the saga's idempotency key, and the case is closed
    final = saga.wait_for(result["notification_id"], {"compensated"}, timeout=30)
    assert final["payment"]["refund_id"].startswith("re_")
    payment_intent_id = final["payment"]["payment_intent_id"]
    refunds = [
        r
        for r in system.sandboxes["stripe"].control.requests("/v1/refunds")
        if r["status"] == 200 and (r.get("form") or {}).get("payment_intent") == payment_intent_id
    ]
    assert len(refunds) == 1
    assert ("ReconcilePayment", "compensated") in {(e["step"], e["outcome"]) for e in final["timeline"]}


def _stripe_counts(stripe, notification_id: str) -> tuple[int, int]:
    """PaymentIntents and Refunds the Stripe sandbox created for this notification."""
    created = [
        r
        for r in stripe.requests("/v1/payment_intents")
        if r["method"] == "POST"
        and r["path"] == "/v1/payment_intents"
        and r["status"] == 200
        and notification_id in json.dumps(r.get("form"))
    ]
    refunds = [r for r in stripe.requests("/v1/refunds") if r["method"] == "POST" and r["status"] == 200]
    return len(created), len(refunds)


@pytest.fixture
def reconcile_policy(system):
    """Set ReconcilePayment's policy parameters for one test (its containers restart to read them)."""
    pool = system.runtime.pool("ReconcilePaymentFunction")
    before = dict(pool.spec.environment)

    def apply(found: str = "continue", missing: str = "not_taken") -> None:
        pool.spec.environment["RECONCILE_FOUND_CHARGE_POLICY"] = found
        pool.spec.environment["RECONCILE_MISSING_CHARGE_POLICY"] = missing
        pool.recycle()

    yield apply
    pool.spec.environment.clear()
    pool.spec.environment.update(before)
    pool.recycle()


def _uncertain_charge_then_recovery(system, saga, *, charge_went_through: bool = False):
    """Stripe down when the saga charges: the case is parked and the saga waits; then Stripe recovers
    (with, if ``charge_went_through``, the charge Stripe took although its answer was lost) and the
    compensation dead-letter queue is redriven."""
    stripe = system.sandboxes["stripe"].control
    stripe.inject_fault("outage", path_prefix="/v1/payment_intents")
    accepted = saga.notify(order_body()).json()
    notification_id = accepted["notification_id"]
    waiting = saga.wait_for_event(notification_id, "AwaitChargeReconciliation", "waiting")
    assert (waiting["status"], waiting["status_reason"]) == ("failed", "charge_outcome_unknown")

    stripe.clear_faults()
    if charge_went_through:
        # The one request that reached Stripe: the saga's own, with its idempotency key and metadata
        answer = httpx.post(
            f"{system.sandboxes['stripe'].base_url}/v1/payment_intents",
            auth=(STRIPE_API_KEY, ""),
            headers={"Idempotency-Key": charge_key(notification_id)},
            data={
                "amount": "2599",
                "currency": "gbp",
                "payment_method": "pm_card_visa",
                "confirm": "true",
                "metadata[notification_id]": notification_id,
            },
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
    _close_stripe_breaker(system)
    DeadLetterQueues(system.boto3_client("sqs"), STACK).redrive("compensation")
    return accepted


def test_an_uncertain_charge_during_a_stripe_outage_is_settled_without_a_charge_or_a_refund(
    system, saga, reconcile_policy
):
    # Given Stripe down when the saga charges: the charge's outcome is unknown and the case is parked
    # When Stripe recovers and the compensation dead-letter queue is redriven (policy: not_taken)
    reconcile_policy(missing="not_taken")
    accepted = _uncertain_charge_then_recovery(system, saga)
    stripe = system.sandboxes["stripe"].control

    # Then ReconcilePayment asked Stripe, found no charge, and took none: no PaymentIntent, no refund
    final = saga.wait_for(accepted["notification_id"], {"payment_not_taken"}, timeout=60)
    assert final["payment"].get("refund_id") is None
    assert _stripe_counts(stripe, accepted["notification_id"]) == (0, 0)
    assert ("ReconcilePayment", "payment_not_taken") in {(e["step"], e["outcome"]) for e in final["timeline"]}
    # And the execution ends as the notification does: succeeded, with its final status as output
    history = History(system.boto3_client("stepfunctions"), accepted["execution_arn"])
    assert history.status == "SUCCEEDED"
    assert history.entered[-1] == "NotificationReconciled"
    assert (history.output["status"], history.output["reason"]) == (
        "payment_not_taken",
        "charge_reconciled_not_found",
    )


def test_an_uncertain_charge_stripe_has_no_record_of_is_charged_again_and_delivered_by_policy(
    system, saga, reconcile_policy
):
    reconcile_policy(missing="charge_again")
    accepted = _uncertain_charge_then_recovery(system, saga)
    final = saga.wait_for(accepted["notification_id"], {"delivered"}, timeout=60)
    # One PaymentIntent, created by ChargePayment with the saga's key; no refund
    assert _stripe_counts(system.sandboxes["stripe"].control, accepted["notification_id"]) == (1, 0)
    assert final["payment"]["status"] == "succeeded"
    history = History(system.boto3_client("stepfunctions"), accepted["execution_arn"])
    assert history.status == "SUCCEEDED"
    assert history.path_contains(
        "AwaitChargeReconciliation",
        "CheckChargeReconciliation",
        "ChargeAgainAfterReconciliation",
        "ChargePayment",
    )
    assert "RefundPayment" not in history.entered


def test_an_uncertain_charge_that_went_through_continues_the_saga_without_a_refund(
    system, saga, reconcile_policy
):
    reconcile_policy(found="continue")
    accepted = _uncertain_charge_then_recovery(system, saga, charge_went_through=True)
    final = saga.wait_for(accepted["notification_id"], {"delivered"}, timeout=60)
    # The charge Stripe took is kept and the receipt and SMS sent: one PaymentIntent, no refund
    assert _stripe_counts(system.sandboxes["stripe"].control, accepted["notification_id"]) == (1, 0)
    assert final["payment"]["status"] == "succeeded"
    assert final["payment"]["payment_intent_id"].startswith("pi_")
    assert {final["channels"][c]["status"] for c in ("email", "sms")} <= {"sent", "delivered"}
    history = History(system.boto3_client("stepfunctions"), accepted["execution_arn"])
    assert history.status == "SUCCEEDED"
    assert history.path_contains("ContinueAfterChargeReconciliation", "SendReceiptEmail")
    assert history.entered.count("ChargePayment") == 1
    assert history.output["status"] == "delivered"


def test_an_uncertain_charge_that_went_through_is_refunded_when_the_policy_voids_the_order(
    system, saga, reconcile_policy
):
    reconcile_policy(found="void")
    accepted = _uncertain_charge_then_recovery(system, saga, charge_went_through=True)
    final = saga.wait_for(accepted["notification_id"], {"compensated"}, timeout=60)
    assert final["status_reason"] == "charge_reconciled_void"
    # The order is void: its one charge is refunded once, and nothing is sent
    assert _stripe_counts(system.sandboxes["stripe"].control, accepted["notification_id"]) == (1, 1)
    history = History(system.boto3_client("stepfunctions"), accepted["execution_arn"])
    assert history.status == "SUCCEEDED"
    assert "SendReceiptEmail" not in history.entered
    assert history.output["status"] == "compensated"


def test_a_required_sms_holds_the_saga_until_the_outage_queue_sends_it(system, saga):
    system.sandboxes["twilio"].control.inject_fault("outage", path_prefix="/2010-04-01")
    system.outage["sns"].down = True
    accepted = saga.notify(order_body(delivery_policy={"sms": "required"})).json()
    # The saga parks the SMS and waits; Twilio comes back before the outage queue's last try
    history_arn = accepted["execution_arn"]
    saga.wait_for_event(accepted["notification_id"], "RetryDelivery", "retry_scheduled")
    system.sandboxes["twilio"].control.clear_faults()
    result = saga.wait_for(accepted["notification_id"])
    assert result["status"] == "delivered_with_fallback"
    history = History(system.boto3_client("stepfunctions"), history_arn)
    assert history.path_contains("CheckSmsPolicyAfterOutage", "ParkSmsInOutageQueueAndWait", "RecordOutcome")
    assert "RefundPayment" not in history.entered


def test_a_required_sms_that_never_goes_out_refunds_the_payment(system, saga):
    system.sandboxes["twilio"].control.inject_fault("outage", path_prefix="/2010-04-01")
    system.outage["sns"].down = True
    result = saga.run(order_body(delivery_policy={"sms": "required"}))
    assert result["status"] == "compensated"
    assert result["status_reason"] == "required_sms_failed"
    history = History(system.boto3_client("stepfunctions"), result["execution_arn"])
    assert history.path_contains("ParkSmsInOutageQueueAndWait", "RefundPayment", "RecordOutcome")
    # Given up on, the SMS is not left for a redrive that would text a refunded customer
    assert (
        queue_messages(
            system.boto3_client("sqs"),
            system.physical_id("SmsDeadLetterQueue"),
            result["notification_id"],
            wait=1,
        )
        == []
    )


def _close_stripe_breaker(system):
    """Stripe's breaker closed by hand: its state item and its window's counters (the failures that
    opened it would open it again at the next call)."""
    dynamodb = system.boto3_client("dynamodb")
    table = system.physical_id("CircuitBreakerTable")
    for item in dynamodb.scan(TableName=table)["Items"]:
        if item["id"]["S"] == "stripe" or item["id"]["S"].startswith("stripe#"):
            dynamodb.delete_item(TableName=table, Key={"id": item["id"]})
