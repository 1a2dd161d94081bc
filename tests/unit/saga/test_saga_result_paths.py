"""The table of state names and ResultPaths ties the state machine to the outcome that reads its state."""

import dataclasses
import inspect

import pytest

from tidings.notifications.models import ChannelStatus, NotificationStatus
from tidings.saga import definition, outcome, result_paths

pytestmark = pytest.mark.unit

SENT = {"provider": "twilio", "provider_message_id": "m", "deduplicated": False}


def _steps() -> list[result_paths.Step]:
    steps = [step for step in vars(result_paths).values() if isinstance(step, result_paths.Step)]
    for channel in result_paths.CHANNELS:
        steps += [channel.primary, channel.fallback, channel.park]
        steps += [channel.park_and_wait] if channel.park_and_wait else []
    return steps


def test_the_outcome_spells_no_state_name_and_no_key_of_its_own():
    source = inspect.getsource(outcome)
    for step in _steps():
        for name in (step.state, *step.keys):
            assert f'"{name}"' not in source, name
    assert f'"{result_paths.DELIVERY_POLICY}"' not in source


def test_a_step_renamed_in_the_table_is_renamed_in_the_definition_and_still_read_by_the_outcome(
    monkeypatch,
):
    # Given the SMS's primary send renamed in the table only
    renamed = result_paths.step("SendSmsThroughTwilio")
    sms = dataclasses.replace(result_paths.SMS, primary=renamed)
    monkeypatch.setattr(result_paths, "SMS", sms)
    monkeypatch.setattr(result_paths, "CHANNELS", (result_paths.EMAIL, sms))

    # When the definition is built and an execution's state written through it is decided
    states = definition.build()["States"]
    execution_state = {
        "notification_id": "n-1",
        "delivery_policy": {"email": "best_effort", "sms": "best_effort"},
        "ChargePaymentResult": {"status": "succeeded", "payment_intent_id": "pi_1"},
        "SendReceiptEmailResult": SENT,
        states["SendSmsThroughTwilio"]["ResultPath"].removeprefix("$."): SENT,
    }
    decided = outcome.decide(outcome.OutcomeInput.model_validate(execution_state))

    # Then the state carries the new name everywhere, and the outcome reads it without a change
    assert "SendSms" not in states
    assert states["SendReceiptEmail"]["Next"] == "SendSmsThroughTwilio"
    assert states["ParkEmailInDeadLetterQueue"]["Next"] == "SendSmsThroughTwilio"
    assert states["SendSmsThroughTwilio"]["Catch"][-1]["Next"] == "SendSmsViaSns"
    assert decided.status == NotificationStatus.DELIVERED
    assert decided.channels["sms"].status == ChannelStatus.SENT


class _Reading(outcome.OutcomeInput):
    """RecordOutcome's input that remembers every key whose step output is read from it."""

    def model_post_init(self, context, /):
        object.__setattr__(self, "_read", set())

    @property
    def read(self) -> set[str]:
        return self._read

    def written(self, key):
        self._read.add(key)
        return super().written(key)


ERROR = {"Error": "ProviderUnavailable", "Cause": "{}"}
WRITES = [
    pytest.param({"SendReceiptEmailResult": SENT, "SendSmsResult": SENT}, id="delivered"),
    pytest.param({"ChargePaymentError": {"Error": "PaymentDeclined", "Cause": "{}"}}, id="declined"),
    pytest.param({"CancelPaymentResult": {"outcome": "cancelled"}}, id="3ds-timeout"),
    pytest.param(
        {"SendReceiptEmailError": ERROR, "SendReceiptEmailViaSesError": ERROR, "RefundPaymentResult": SENT},
        id="compensated",
    ),
    pytest.param(
        {
            "SendReceiptEmailResult": SENT,
            "SendSmsError": ERROR,
            "SendSmsViaSnsError": ERROR,
            "ParkSmsResult": {},
        },
        id="sms-parked",
    ),
    pytest.param(
        {"SendReceiptEmailResult": SENT, "SmsOutageError": ERROR, "ParkRefundResult": {}}, id="refund-parked"
    ),
]


@pytest.mark.parametrize("writes", WRITES)
def test_the_outcome_reads_only_what_record_outcome_is_given(writes):
    policy = {"email": "required", "sms": "required"}
    state = _Reading.model_validate(result_paths.execution_input("n-1", policy) | writes)
    outcome.decide(state)
    assert state.read
    assert state.read <= {"delivery_policy", *result_paths.outcome_inputs()}


@pytest.mark.parametrize("writes", WRITES)
def test_a_key_left_null_decides_as_a_key_never_written(writes):
    policy = {"email": "required", "sms": "best_effort"}
    written_only = {"notification_id": "n-1", "delivery_policy": policy, **writes}
    given = outcome.OutcomeInput.model_validate(result_paths.execution_input("n-1", policy) | writes)
    assert outcome.decide(given) == outcome.decide(outcome.OutcomeInput.model_validate(written_only))


def test_record_outcome_is_given_the_notification_its_policy_and_only_the_outcomes_keys():
    record = definition.build()["States"]["RecordOutcome"]
    assert "Payload.$" not in record["Parameters"]
    payload = record["Parameters"]["Payload"]
    assert payload == {
        "notification_id.$": "$.notification_id",
        "delivery_policy.$": "$.delivery_policy",
        **{f"{key}.$": f"$.{key}" for key in result_paths.outcome_inputs()},
    }
    # The charge's own result (its PaymentIntent id) and the outcome of an earlier try stay out.
    assert "ChargePaymentResult.$" not in payload
    assert "Outcome.$" not in payload


def test_record_outcome_decides_an_earlier_definitions_whole_state_from_the_same_keys():
    # Given the whole state an execution started on the earlier definition hands over (no nulls)
    whole = {
        "notification_id": "n-1",
        "delivery_policy": {"email": "required", "sms": "best_effort"},
        "ChargePaymentResult": {"status": "succeeded", "payment_intent_id": "pi_1"},
        "SendReceiptEmailResult": SENT,
        "SendSmsError": ERROR,
        "SendSmsViaSnsResult": SENT,
    }

    # When RecordOutcome parses it, and the explicit input of the same run
    parsed = outcome.OutcomeInput.model_validate(whole)
    explicit = outcome.OutcomeInput.model_validate(
        result_paths.execution_input("n-1", whole["delivery_policy"])
        | {key: whole[key] for key in ("SendReceiptEmailResult", "SendSmsError", "SendSmsViaSnsResult")}
    )

    # Then only the outcome's keys are kept, and both decide the same status
    assert "ChargePaymentResult" not in parsed.model_dump()
    assert outcome.decide(parsed) == outcome.decide(explicit)
    assert outcome.decide(parsed).status == NotificationStatus.DELIVERED_WITH_FALLBACK
