"""The cost model's arithmetic: SMS segments, Stripe's fee, the units of a history and the summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tidings_local.cost import load_prices
from tidings_local.cost.report import SagaUnits, price, sms_segments, summarize, units_from_history

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_sms_segments_follow_gsm7_and_ucs2_lengths():
    assert sms_segments("a" * 160) == 1
    assert sms_segments("a" * 161) == 2  # 153 characters per segment once concatenated
    assert sms_segments("Grüße ✓") == 1
    assert sms_segments("✓" * 71) == 2  # UCS-2: 70, then 67 per segment


def test_default_prices_load_and_price_a_charge():
    prices = load_prices()
    assert prices.stripe_fee(2599) == pytest.approx(25.99 * 0.029 + 0.30)
    assert prices.sms_segment("twilio", "1") == prices.twilio_sms_segment
    assert prices.happy_path_aws_cost() == pytest.approx(7 * 0.000025)


def _task(name, seconds, retries=0, function="tidings-local-ChargePaymentFunction"):
    events = [{"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": name}}]
    for attempt in range(retries + 1):
        events += [
            {
                "type": "TaskScheduled",
                "taskScheduledEventDetails": {
                    "resourceType": "lambda",
                    "parameters": f'{{"FunctionName": "{function}"}}',
                },
            },
            {"type": "TaskStarted", "timestamp": T0},
            {
                "type": "TaskFailed" if attempt < retries else "TaskSucceeded",
                "timestamp": T0 + timedelta(seconds=seconds),
            },
        ]
    return events


def test_a_history_counts_states_retries_and_billed_gb_seconds():
    events = [
        *_task("ChargePayment", 0.2, retries=1),
        {"type": "ChoiceStateEntered", "stateEnteredEventDetails": {"name": "CheckPaymentStatus"}},
        *_task("SendReceiptEmailViaSes", 0.5, function="tidings-local-SendEmailFunction"),
    ]
    units = units_from_history(
        "n-1", "delivered_with_fallback", events, {"tidings-local-ChargePaymentFunction": 1024}
    )
    assert units.transitions == 3 + 1  # three states entered, one retry
    assert units.task_retries == 1
    assert units.lambda_invocations == 3
    assert units.lambda_gb_seconds == pytest.approx(0.2 * 1 * 2 + 0.5 * 0.5)
    assert units.ses_emails == 1
    assert units.fallbacks == 1


def test_the_premium_is_what_fallbacks_cost_beyond_a_plain_delivery():
    prices = load_prices()
    plain = SagaUnits("a", "delivered", transitions=7, lambda_invocations=4, sendgrid_emails=1)
    fallback = SagaUnits(
        "b", "delivered_with_fallback", transitions=9, lambda_invocations=6, ses_emails=1, fallbacks=1
    )
    summary = summarize([plain, fallback], prices)
    assert summary["fallback_and_retry_premium"] == pytest.approx(
        price(fallback, prices).without_payment_fee - price(plain, prices).without_payment_fee
    )
    assert summary["per_1000_sagas"] == pytest.approx(
        500 * (price(plain, prices).total + price(fallback, prices).total)
    )


def test_tidings_cost_is_a_command_with_json_and_prices_options():
    from tidings_local.cli import build_parser

    args = build_parser().parse_args(["cost", "--local", "--json", "--last", "5", "--prices", "p.toml"])
    assert args.command == "cost"
    assert (args.json, args.last, str(args.prices)) == (True, 5, "p.toml")
