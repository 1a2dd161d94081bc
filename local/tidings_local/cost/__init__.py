"""Cost per notification: unit prices (prices.toml) and the units each saga used.

``tidings cost`` (cli.py) counts the units of finished sagas on the local system -- state transitions
from the execution histories, Lambda invocations and their durations, provider calls and SMS segments
from the sandboxes' request logs -- and prices them with :class:`Prices`. docs/costs.md has the figures.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PRICES = Path(__file__).with_name("prices.toml")
#: States the happy path enters (issue 13 part 5 keeps it there): used by the dashboard's estimate.
HAPPY_PATH_TRANSITIONS = 7


@dataclass(frozen=True)
class Prices:
    stripe_percent: float
    stripe_fixed_fee: float
    sendgrid_email: float
    ses_email: float
    twilio_sms_segment: float
    sns_sms_segment: float
    transition: float
    lambda_gb_second: float
    lambda_request: float
    sqs_request: float
    dynamodb_write_unit: float
    dynamodb_read_unit: float
    twilio_by_country: dict[str, float] = field(default_factory=dict)
    sns_by_country: dict[str, float] = field(default_factory=dict)

    def sms_segment(self, provider: str, phone: str | None) -> float:
        table = self.twilio_by_country if provider == "twilio" else self.sns_by_country
        default = self.twilio_sms_segment if provider == "twilio" else self.sns_sms_segment
        digits = (phone or "").lstrip("+")
        for length in (4, 3, 2, 1):  # longest calling code first
            if digits[:length] in table:
                return table[digits[:length]]
        return default

    def stripe_fee(self, amount_minor: int) -> float:
        return round(amount_minor / 100 * self.stripe_percent / 100, 6) + self.stripe_fixed_fee

    def happy_path_aws_cost(self) -> float:
        return HAPPY_PATH_TRANSITIONS * self.transition


def load_prices(path: Path | None = None) -> Prices:
    data = tomllib.loads((path or DEFAULT_PRICES).read_text())
    return Prices(
        stripe_percent=float(data["stripe"]["percent"]),
        stripe_fixed_fee=float(data["stripe"]["fixed_fee"]),
        sendgrid_email=float(data["sendgrid"]["email"]),
        ses_email=float(data["ses"]["email"]),
        twilio_sms_segment=float(data["twilio"]["segment_default"]),
        sns_sms_segment=float(data["sns"]["segment_default"]),
        transition=float(data["stepfunctions"]["transition"]),
        lambda_gb_second=float(data["lambda"]["gb_second"]),
        lambda_request=float(data["lambda"]["request"]),
        sqs_request=float(data["sqs"]["request"]),
        dynamodb_write_unit=float(data["dynamodb"]["write_unit"]),
        dynamodb_read_unit=float(data["dynamodb"]["read_unit"]),
        twilio_by_country={k: float(v) for k, v in data["twilio"].get("segment_by_country", {}).items()},
        sns_by_country={k: float(v) for k, v in data["sns"].get("segment_by_country", {}).items()},
    )
