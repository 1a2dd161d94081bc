"""The chaos matrix's judge on hand-made evidence: a clean notification passes, and each broken promise
(a second charge, a second e-mail by recipient or by send key, a dead-lettered channel not on its
queue, too many attempts, a record the providers contradict) is caught under its check's name."""

import copy

import pytest

from tidings_local.chaos.checks import Evidence, Policy, judge, state_attempts
from tidings_local.chaos.matrix import BY_KEY, MATRIX, REDUCED, select

pytestmark = pytest.mark.unit

NID = "n-1"
EMAIL, PHONE = "chaos-a-1@example.com", "+447700910001"
CELL = BY_KEY["sendgrid:5xx_burst"]
POLICY = Policy(state_attempts={"ChargePayment": 3, "SendReceiptEmail": 2, "SendSms": 2, "RecordOutcome": 1})


def clean() -> Evidence:
    return Evidence(
        notifications={
            NID: {
                "notification_id": NID,
                "status": "delivered",
                "status_reason": None,
                "execution_arn": "arn:x",
                "payment": {"payment_intent_id": "pi_1", "status": "succeeded"},
                "channels": {
                    "email": {"status": "sent", "provider": "sendgrid", "provider_message_id": "m1"},
                    "sms": {"status": "sent", "provider": "twilio", "provider_message_id": "SM1"},
                },
                "timeline": [{"step": "ChargePayment"}, {"step": "RecordOutcome"}],
            }
        },
        contacts={NID: (EMAIL, PHONE)},
        stripe={
            "payment_intents": [{"id": "pi_1", "status": "succeeded", "metadata": {"notification_id": NID}}],
            "refunds": [],
        },
        stripe_requests=[
            {"method": "POST", "path": "/v1/payment_intents", "form": {"metadata": {"notification_id": NID}}}
        ],
        sendgrid_mails=[
            {"message_id": "m1", "recipients": [EMAIL], "custom_args": {"tidings_send_key": "k1"}}
        ],
        sendgrid_requests=[{"method": "POST", "json": {"custom_args": {"notification_id": NID}}}],
        twilio_messages=[{"sid": "SM1", "to": PHONE}],
        twilio_requests=[
            {
                "method": "POST",
                "status": 201,
                "form": {"StatusCallback": f"http://x/webhooks/twilio?tidings_send_key={NID}-sms"},
            }
        ],
        ses_messages=[],
        sns_messages=[],
        histories={NID: {"ChargePayment": 1, "SendReceiptEmail": 1, "SendSms": 1, "RecordOutcome": 1}},
        execution_status={NID: "SUCCEEDED"},
    )


def problems(evidence: Evidence, cell=CELL) -> list[str]:
    return judge(evidence, POLICY, cell)[NID]


def checks_failed(evidence: Evidence) -> set[str]:
    return {problem.split(":", 1)[0] for problem in problems(evidence)}


def test_a_clean_notification_passes_every_check():
    assert problems(clean()) == []


def test_a_second_charge_for_one_notification_is_caught():
    evidence = clean()
    evidence.stripe["payment_intents"].append(
        {"id": "pi_2", "status": "succeeded", "metadata": {"notification_id": NID}}
    )
    assert "twice" in checks_failed(evidence)


def test_an_email_sent_by_both_providers_is_caught_by_recipient():
    evidence = clean()
    evidence.ses_messages.append(("ses-1", [EMAIL]))
    assert any(p.startswith("twice: 1 SendGrid + 1 SES") for p in problems(evidence))


def test_a_send_key_used_twice_is_caught():
    evidence = clean()
    evidence.sendgrid_mails.append(
        {"message_id": "m2", "recipients": ["other@example.com"], "custom_args": {"tidings_send_key": "k1"}}
    )
    assert any("send key used by 2 e-mails" in p for p in problems(evidence))


def test_an_sms_sent_by_twilio_and_sns_is_caught():
    evidence = clean()
    evidence.sns_messages.append(("sns-1", PHONE))
    assert "twice" in checks_failed(evidence)


def test_a_dead_lettered_channel_must_be_on_its_queue_with_a_reason():
    evidence = clean()
    notification = evidence.notifications[NID]
    notification["status"], notification["status_reason"] = "partially_delivered", None
    notification["channels"]["email"] = {"status": "dead_lettered"}
    evidence.sendgrid_mails.clear()
    cell = BY_KEY["ses:outage"]
    assert any(p.startswith("parked: email dead-lettered") for p in problems(evidence, cell))
    evidence.parked = {NID: [{"queue": "EmailDeadLetterQueue", "notification_id": NID}]}
    assert any(
        p.startswith("parked: email on EmailDeadLetterQueue without a reason")
        for p in problems(evidence, cell)
    )
    evidence.parked[NID][0]["error"] = {"Error": "ProviderUnavailable"}
    assert problems(evidence, cell) == []


def test_more_runs_of_a_state_than_its_retry_policy_allows_is_caught():
    evidence = clean()
    evidence.histories[NID]["SendReceiptEmail"] = 3
    assert any(p.startswith("attempts: SendReceiptEmail ran 3 times") for p in problems(evidence))


def test_more_provider_requests_than_attempts_allow_is_caught():
    evidence = clean()
    request = evidence.sendgrid_requests[0]
    evidence.sendgrid_requests = [copy.deepcopy(request) for _ in range(4)]  # 1 run x 3 in-call attempts
    assert any(p.startswith("attempts: 4 sendgrid requests") for p in problems(evidence))


def test_a_channel_recorded_as_sent_that_no_provider_holds_is_caught():
    evidence = clean()
    evidence.twilio_messages.clear()
    assert any(p.startswith("timeline: sms sent via twilio") for p in problems(evidence))


def test_a_message_sent_while_the_record_says_it_was_not_is_caught():
    evidence = clean()
    evidence.notifications[NID]["channels"]["email"] = {"status": "dead_lettered"}
    assert any(p.startswith("timeline: email recorded dead_lettered but 1 sent") for p in problems(evidence))


def test_two_final_statuses_are_caught():
    evidence = clean()
    evidence.notifications[NID]["timeline"].append({"step": "RecordOutcome"})
    assert any(p.startswith("final: 2 RecordOutcome") for p in problems(evidence))


def test_a_running_execution_is_caught_unless_it_waits_for_its_charge_to_be_reconciled():
    evidence = clean()
    evidence.execution_status[NID] = "RUNNING"
    assert "final: execution still running" in problems(evidence)
    # An uncertain charge: failed/charge_outcome_unknown, and the saga waits for ReconcilePayment
    notification = evidence.notifications[NID]
    notification["status"], notification["status_reason"] = "failed", "charge_outcome_unknown"
    notification["timeline"].append({"step": "AwaitChargeReconciliation", "outcome": "waiting"})
    assert "final: execution still running" not in problems(evidence, BY_KEY["stripe:outage"])


def test_a_status_the_cell_does_not_allow_is_caught():
    evidence = clean()
    evidence.notifications[NID]["status"] = "delivered_with_fallback"
    assert any(p.startswith("final: delivered_with_fallback, expected delivered") for p in problems(evidence))


def test_attempt_limits_come_from_every_retrier_of_a_state():
    definition = {
        "States": {
            "ChargePayment": {"Type": "Task", "Retry": [{"MaxAttempts": 2}, {"MaxAttempts": 3}]},
            "CheckOutcome": {"Type": "Choice"},
            "RecordOutcome": {"Type": "Task"},
        }
    }
    assert state_attempts(definition) == {"ChargePayment": 6, "RecordOutcome": 1}


def test_the_matrix_covers_every_provider_and_fault_and_the_reduced_one_needs_no_proxies():
    assert len(MATRIX) == 5 * 10  # providers x faults (the nine, and a crash after acceptance)
    assert {cell.key for cell in select(list(REDUCED))} == set(REDUCED)
    assert not any(cell.needs_aws for cell in select(list(REDUCED)))
    for cell in MATRIX:
        assert cell.applies or cell.note, cell.key
