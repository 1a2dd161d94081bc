"""The state machine definition against its contracts: the template's substitutions and errors.py's names."""

import json
import re

import pytest
from support.template import ROOT, sam_template

from tidings import errors

pytestmark = pytest.mark.unit

DEFINITION_PATH = ROOT / "statemachine" / "notification_saga.asl.json"
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


@pytest.fixture(scope="module")
def machine():
    return sam_template()["Resources"]["NotificationSagaStateMachine"]["Properties"]


@pytest.fixture(scope="module")
def definition(machine):
    """The definition as CloudFormation renders it: substitutions replaced as text, numbers with defaults."""
    parameters = sam_template()["Parameters"]
    text = DEFINITION_PATH.read_text()

    def render(match):
        value = machine["DefinitionSubstitutions"][match.group(1)]
        if "Ref" in value and value["Ref"] in parameters:
            return str(parameters[value["Ref"]]["Default"])
        return f"arn:aws:test:{match.group(1)}"

    return json.loads(PLACEHOLDER.sub(render, text))


def _tasks(definition):
    return {name: state for name, state in definition["States"].items() if state["Type"] == "Task"}


def _ends(definition, start, stop_at=("Task",)):
    """The Task states (or ends) reached from ``start`` through Choice and Pass states only."""
    seen, todo, ends = set(), [start], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = definition["States"][name]
        if state["Type"] in stop_at or state["Type"] in ("Succeed", "Fail"):
            ends.add(name)
            continue
        nexts = [rule["Next"] for rule in state.get("Choices", [])] + [
            state.get("Default"),
            state.get("Next"),
        ]
        todo += [n for n in nexts if n]
    return ends


def test_every_park_state_is_reached_only_through_the_shaping_of_its_error(definition):
    """A dead-letter body that carries a caught error gets it without the Lambda runtime's stack trace:
    no Catch and no Choice goes straight to such a park state."""
    parks = {
        "ParkRefundInDeadLetterQueue": "RefundPayment",
        "ParkCancellationInDeadLetterQueue": "CancelPayment",
        "ParkEmailInDeadLetterQueue": "SendReceiptEmailViaSes",
        "ParkUncertainChargeInDeadLetterQueue": "ChargePayment",
    }
    shaping = {f"Keep{step}ErrorMessage" for step in parks.values()} | {
        f"Read{step}Error" for step in parks.values()
    }
    for name, state in definition["States"].items():
        targets = [c["Next"] for c in state.get("Catch", [])] + [r["Next"] for r in state.get("Choices", [])]
        targets += [state.get("Next"), state.get("Default")]
        for park in parks:
            if park in targets and name not in shaping:
                # Only the charge's status check reaches its park without an error to carry
                assert (name, park) == ("CheckPaymentStatus", "ParkUncertainChargeInDeadLetterQueue"), name
    for step in parks.values():
        parse = definition["States"][f"Parse{step}ErrorCause"]
        assert parse["Parameters"]["Cause.$"] == f"States.StringToJson($.{step}Error.Cause)"
        keep = definition["States"][f"Keep{step}ErrorMessage"]
        assert keep["Parameters"] == {
            "Error.$": f"$.{step}Error.Error",
            "Cause.$": f"$.{step}Error.Cause.errorMessage",
        }


def test_every_placeholder_has_a_substitution_and_every_substitution_is_used(machine):
    used = set(PLACEHOLDER.findall(DEFINITION_PATH.read_text()))
    assert used == set(machine["DefinitionSubstitutions"])


def test_retry_settings_come_from_template_parameters_with_documented_defaults(machine):
    parameters = sam_template()["Parameters"]
    for name, value in machine["DefinitionSubstitutions"].items():
        if name.endswith(("Seconds", "Attempts", "Rate")):
            assert value == {"Ref": name}, name
            assert "Default" in parameters[name], name


def test_every_error_name_matched_is_a_typed_error_or_a_service_error(definition):
    allowed_prefixes = ("States.", "Lambda.")
    # The Lambda runtime's own errorTypes, which Step Functions reports as the error's name.
    runtime_errors = {"Sandbox.Timedout", "Runtime.ExitError"}
    for name, state in _tasks(definition).items():
        for block in state.get("Retry", []) + state.get("Catch", []):
            for error_name in block["ErrorEquals"]:
                known = (
                    error_name in errors.ERROR_TYPES | errors.SAGA_ERROR_TYPES or error_name in runtime_errors
                )
                assert known or error_name.startswith(allowed_prefixes), (
                    name,
                    error_name,
                )


def test_transient_errors_retry_on_the_same_provider_before_any_fallback(definition):
    tasks = _tasks(definition)
    for name in (
        "ChargePayment",
        "SendReceiptEmail",
        "SendReceiptEmailViaSes",
        "SendSms",
        "SendSmsViaSns",
        "RefundPayment",
    ):
        retried = {error for block in tasks[name]["Retry"] for error in block["ErrorEquals"]}
        assert {"RateLimited", "ProviderUnavailable", "NetworkError", "ProviderTimeout"} <= retried, name
        assert all(block["JitterStrategy"] == "FULL" for block in tasks[name]["Retry"]), name


def test_an_open_breaker_falls_back_at_once_instead_of_retrying_the_same_provider(definition):
    tasks = _tasks(definition)
    for name in ("SendReceiptEmail", "SendSms"):
        retried = {error for block in tasks[name]["Retry"] for error in block["ErrorEquals"]}
        assert "CircuitOpen" not in retried
        fallback_catch = tasks[name]["Catch"][-1]
        assert fallback_catch["ErrorEquals"] == ["States.ALL"]
        assert fallback_catch["Next"] in ("SendReceiptEmailViaSes", "SendSmsViaSns")


def test_a_permanent_refusal_never_falls_back(definition):
    tasks = _tasks(definition)
    for name, rejected in (
        ("SendReceiptEmail", "CheckEmailPolicyAfterRejection"),
        ("SendReceiptEmailViaSes", "CheckEmailPolicyAfterRejection"),
        ("SendSms", "CheckSmsPolicyAfterRejection"),
        ("SendSmsViaSns", "CheckSmsPolicyAfterRejection"),
    ):
        first = tasks[name]["Catch"][0]
        # A refusal, or a suppressed recipient: neither goes to the other provider
        assert first["ErrorEquals"] == ["InvalidRequest", "RecipientSuppressed"]
        assert first["Next"] == rejected


def test_a_declined_card_records_the_outcome_without_compensation(definition):
    catch = _tasks(definition)["ChargePayment"]["Catch"][0]
    assert catch == {
        "ErrorEquals": ["PaymentDeclined"],
        "ResultPath": "$.ChargePaymentError",
        "Next": "RecordOutcome",
    }


def test_a_failing_refund_ends_in_the_alarmed_dead_letter_queue_never_in_fail(definition, machine):
    refund = _tasks(definition)["RefundPayment"]
    assert refund["Catch"] == [
        {
            "ErrorEquals": ["States.ALL"],
            "ResultPath": "$.RefundPaymentError",
            "Next": "ReadRefundPaymentError",
        }
    ]
    # Every way through the shaping of its error (type and message only) ends in the park state
    assert _ends(definition, "ReadRefundPaymentError") == {"ParkRefundInDeadLetterQueue"}
    park = definition["States"]["ParkRefundInDeadLetterQueue"]
    assert park["Resource"] == "arn:aws:states:::sqs:sendMessage"
    assert machine["DefinitionSubstitutions"]["CompensationDeadLetterQueueUrl"] == {
        "Ref": "CompensationDeadLetterQueue"
    }
    alarms = [
        resource
        for resource in sam_template()["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and {"Name": "QueueName", "Value": {"Fn::GetAtt": ["CompensationDeadLetterQueue", "QueueName"]}}
        in resource["Properties"].get("Dimensions", [])
    ]
    assert alarms, "the compensation dead-letter queue must be alarmed"


def test_the_3ds_wait_uses_a_task_token_and_a_configurable_timeout_that_cancels(definition):
    wait = definition["States"]["WaitForPaymentAction"]
    assert wait["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert wait["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert wait["TimeoutSeconds"] == sam_template()["Parameters"]["PaymentActionTimeoutSeconds"]["Default"]
    assert wait["Catch"][-1]["Next"] == "CancelPayment"


def test_every_state_is_reachable_and_every_transition_lands_on_a_state(definition):
    states = definition["States"]
    targets = {definition["StartAt"]}
    for state in states.values():
        targets.update(filter(None, [state.get("Next"), state.get("Default")]))
        targets.update(choice["Next"] for choice in state.get("Choices", []))
        targets.update(catch["Next"] for catch in state.get("Catch", []))
    assert targets <= set(states)
    assert set(states) == targets


def test_no_contact_details_travel_through_the_execution(definition):
    # Steps read contact details from the notification table; payloads carry ids only.
    text = json.dumps(definition)
    for field in ('email"', "phone", "customer"):
        assert f"$.{field}" not in text


def test_state_names_read_as_pascal_case_verbs(definition):
    for name in definition["States"]:
        assert re.fullmatch(r"(?:[A-Z][a-z0-9]+)+", name), name


def test_a_payment_step_that_timed_out_is_retried_with_its_idempotency_key_before_being_parked(definition):
    # A Lambda timeout (Lambda.Unknown) between Stripe's answer and the table write is the commonest
    # "uncertain" charge; the retry replays the same Idempotency-Key, so Stripe answers with the first result.
    tasks = _tasks(definition)
    for name in ("ChargePayment", "CancelPayment", "RefundPayment"):
        retried = {error for block in tasks[name]["Retry"] for error in block["ErrorEquals"]}
        assert "Lambda.Unknown" in retried, name
        # A timeout reported with the runtime's errorType, and a container that died mid-call.
        assert {"Sandbox.Timedout", "Runtime.ExitError"} <= retried, name


def test_a_send_still_in_flight_elsewhere_is_waited_for_rather_than_sent_by_the_fallback(definition):
    # IdempotencyConflict (send_in_progress): falling back at once would hit the same duplicate-send
    # record, end as an outage and, for a required channel, refund a customer who gets the message.
    tasks = _tasks(definition)
    for name in ("SendReceiptEmail", "SendReceiptEmailViaSes", "SendSms", "SendSmsViaSns"):
        first = tasks[name]["Retry"][0]
        assert "IdempotencyConflict" in first["ErrorEquals"], name
