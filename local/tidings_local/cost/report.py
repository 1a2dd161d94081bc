"""Units used by each finished saga, priced, and summed by provider, by final status and per 1,000 sagas.

Where the units come from (all on the local system, or any stack for the AWS side):

* the execution history: state transitions (every state entered, plus every retry of a task, as Step
  Functions Standard bills them), Lambda invocations and their durations (each task attempt, from its
  TaskStarted to its end, at the function's configured memory), SQS messages the saga sent, and e-mails
  and SMS the fallbacks (SES, SNS) took;
* the provider sandboxes' request logs: requests that carry the notification id (Stripe's idempotency
  key and metadata, SendGrid's custom_args, Twilio's status callback), the PaymentIntent amount for
  Stripe's fee, e-mails SendGrid accepted (202) and SMS Twilio accepted (201) with their segments.

DynamoDB is estimated (one write and one read per Lambda task, one write for the API request); the API
and webhook Lambdas around the saga are not counted. docs/costs.md states the same.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from tidings_local.cost import Prices

#: Task states whose success means the fallback provider took the message.
SES_STATES = {"SendReceiptEmailViaSes"}
SNS_STATES = {"SendSmsViaSns"}
NOT_CHARGED = {"payment_declined", "payment_not_taken"}
GSM_7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def sms_segments(text: str) -> int:
    """Segments an SMS is billed as: 160 GSM-7 characters in one, else 153 each; 70 / 67 in UCS-2."""
    if not text:
        return 1
    if set(text) <= GSM_7:
        return 1 if len(text) <= 160 else math.ceil(len(text) / 153)
    return 1 if len(text) <= 70 else math.ceil(len(text) / 67)


@dataclass
class SagaUnits:
    notification_id: str
    status: str
    transitions: int = 0
    task_retries: int = 0
    lambda_invocations: int = 0
    lambda_gb_seconds: float = 0.0
    sqs_messages: int = 0
    stripe_requests: int = 0
    charged_amount: int | None = None  # minor units of the PaymentIntent, when a fee applies
    sendgrid_emails: int = 0
    ses_emails: int = 0
    twilio_segments: list[tuple[int, str]] = field(default_factory=list)  # (segments, calling code)
    sns_messages: int = 0
    fallbacks: int = 0


@dataclass
class SagaCost:
    notification_id: str
    status: str
    by_item: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.by_item.values())

    @property
    def without_payment_fee(self) -> float:
        return self.total - self.by_item.get("stripe_fee", 0.0)


def units_from_history(
    notification_id: str, status: str, events: Iterable[Mapping[str, Any]], memory_mb: Mapping[str, int]
) -> SagaUnits:
    """The saga's own units, from its execution history (``memory_mb``: function name -> MemorySize)."""
    units = SagaUnits(notification_id, status)
    state = None
    started: datetime | None = None
    function = None
    attempts: Counter[int] = Counter()
    entry = 0
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            units.transitions += 1
            entry += 1
            state = event["stateEnteredEventDetails"]["name"]
        elif kind == "TaskScheduled":
            details = event["taskScheduledEventDetails"]
            attempts[entry] += 1
            if attempts[entry] > 1:
                units.transitions += 1  # a retry is billed as a transition too
                units.task_retries += 1
            if details["resourceType"] == "lambda":
                units.lambda_invocations += 1
                parameters = json.loads(details.get("parameters") or "{}")
                function = str(parameters.get("FunctionName", "")).rsplit(":", 1)[-1]
            elif details["resourceType"] == "sqs":
                units.sqs_messages += 1
                function = None
        elif kind == "TaskStarted":
            started = event["timestamp"]
        elif kind in ("TaskSucceeded", "TaskFailed", "TaskTimedOut"):
            if function is not None and started is not None:
                seconds = max(0.001, (event["timestamp"] - started).total_seconds())
                billed = math.ceil(seconds * 1000) / 1000  # Lambda bills by the millisecond
                units.lambda_gb_seconds += billed * memory_mb.get(function, 512) / 1024
            if kind == "TaskSucceeded" and state in SES_STATES:
                units.ses_emails += 1
                units.fallbacks += 1
            if kind == "TaskSucceeded" and state in SNS_STATES:
                units.sns_messages += 1
                units.fallbacks += 1
            started, function = None, None
    return units


def add_provider_requests(units: SagaUnits, requests: Mapping[str, list[Mapping[str, Any]]]) -> SagaUnits:
    """Add what the sandboxes saw for this notification (``requests``: provider -> request log)."""
    for provider, log in requests.items():
        for request in log:
            if units.notification_id not in json.dumps(request, default=str):
                continue
            form = request.get("form") or {}
            if provider == "stripe":
                units.stripe_requests += 1
                if (
                    request["method"] == "POST"
                    and request["path"] == "/v1/payment_intents"
                    and units.status not in NOT_CHARGED
                    and units.charged_amount is None
                ):
                    units.charged_amount = int(_first(form.get("amount")) or 0)
            elif (
                provider == "sendgrid" and request["path"] == "/v3/mail/send" and request.get("status") == 202
            ):
                units.sendgrid_emails += 1
            elif (
                provider == "twilio"
                and request["path"].endswith("/Messages.json")
                and request.get("status") == 201
            ):
                to = str(_first(form.get("To")) or "")
                units.twilio_segments.append(
                    (sms_segments(str(_first(form.get("Body")) or "")), _country(to))
                )
    return units


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _country(phone: str) -> str:
    # Only the calling code is kept (for the price table); the number itself is dropped here.
    digits = phone.lstrip("+")
    return digits[:1] if digits.startswith("1") else digits[:2]


def price(units: SagaUnits, prices: Prices) -> SagaCost:
    items = {
        "stripe_fee": prices.stripe_fee(units.charged_amount) if units.charged_amount else 0.0,
        "sendgrid": units.sendgrid_emails * prices.sendgrid_email,
        "ses": units.ses_emails * prices.ses_email,
        "twilio": sum(
            segments * prices.sms_segment("twilio", code) for segments, code in units.twilio_segments
        ),
        "sns": units.sns_messages * prices.sms_segment("sns", None),
        "stepfunctions": units.transitions * prices.transition,
        "lambda": units.lambda_invocations * prices.lambda_request
        + units.lambda_gb_seconds * prices.lambda_gb_second,
        "sqs": units.sqs_messages * prices.sqs_request,
        "dynamodb": (units.lambda_invocations + 1) * prices.dynamodb_write_unit
        + units.lambda_invocations * prices.dynamodb_read_unit,
    }
    return SagaCost(units.notification_id, units.status, items)


def summarize(units: list[SagaUnits], prices: Prices) -> dict[str, Any]:
    costs = [price(u, prices) for u in units]
    count = len(costs)
    by_item: dict[str, float] = defaultdict(float)
    for cost in costs:
        for item, value in cost.by_item.items():
            by_item[item] += value
    by_status: dict[str, dict[str, float]] = {}
    for status in sorted({c.status for c in costs}):
        group = [c for c in costs if c.status == status]
        by_status[status] = {
            "sagas": len(group),
            "per_notification": sum(c.total for c in group) / len(group),
            "per_notification_without_payment_fee": sum(c.without_payment_fee for c in group) / len(group),
        }
    # The premium: what the sagas with a fallback or a retry cost beyond a plain delivered one.
    plain = [
        c
        for c, u in zip(costs, units, strict=True)
        if u.status == "delivered" and not u.fallbacks and not u.task_retries
    ]
    baseline = sum(c.without_payment_fee for c in plain) / len(plain) if plain else None
    extra = [c for c, u in zip(costs, units, strict=True) if u.fallbacks or u.task_retries]
    premium = sum(c.without_payment_fee - baseline for c in extra) if baseline is not None and extra else 0.0
    total = sum(c.total for c in costs)
    return {
        "sagas": count,
        "total": total,
        "per_notification": total / count if count else 0.0,
        "per_notification_without_payment_fee": sum(c.without_payment_fee for c in costs) / count
        if count
        else 0.0,
        "per_1000_sagas": 1000 * total / count if count else 0.0,
        "per_1000_sagas_without_payment_fee": 1000 * sum(c.without_payment_fee for c in costs) / count
        if count
        else 0.0,
        "by_provider": dict(by_item),
        "by_status": by_status,
        "fallback_and_retry_premium": premium,
        "sagas_with_fallback_or_retry": len(extra),
        "units": [asdict(u) for u in units],
    }


def render(summary: Mapping[str, Any]) -> str:
    lines = [
        f"{summary['sagas']} finished sagas, total ${summary['total']:.4f}",
        f"  per notification        ${summary['per_notification']:.6f}"
        f"   (without Stripe's fee ${summary['per_notification_without_payment_fee']:.6f})",
        f"  per 1,000 sagas         ${summary['per_1000_sagas']:.2f}"
        f"   (without Stripe's fee ${summary['per_1000_sagas_without_payment_fee']:.4f})",
        f"  fallback/retry premium  ${summary['fallback_and_retry_premium']:.6f}"
        f" over {summary['sagas_with_fallback_or_retry']} sagas",
        "",
        f"  {'item':<16}{'USD':>14}",
    ]
    for item, value in summary["by_provider"].items():
        lines.append(f"  {item:<16}{value:>14.6f}")
    lines += ["", f"  {'final status':<26}{'sagas':>6}{'per notification':>18}{'without fee':>14}"]
    for status, row in summary["by_status"].items():
        lines.append(
            f"  {status:<26}{row['sagas']:>6}{row['per_notification']:>18.6f}"
            f"{row['per_notification_without_payment_fee']:>14.6f}"
        )
    return "\n".join(lines)
