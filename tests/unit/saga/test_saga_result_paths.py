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
    decided = outcome.decide(execution_state)

    # Then the state carries the new name everywhere, and the outcome reads it without a change
    assert "SendSms" not in states
    assert states["SendReceiptEmail"]["Next"] == "SendSmsThroughTwilio"
    assert states["ParkEmailInDeadLetterQueue"]["Next"] == "SendSmsThroughTwilio"
    assert states["SendSmsThroughTwilio"]["Catch"][-1]["Next"] == "SendSmsViaSns"
    assert decided.status == NotificationStatus.DELIVERED
    assert decided.channels["sms"].status == ChannelStatus.SENT
