"""The chaos matrix: every provider (Stripe, SendGrid, Twilio, SES, SNS) times every fault.

A cell arms its fault before a batch of notifications starts (``arm``), may act once they all ended
(``after``: late, duplicated or storming webhooks), and names the final statuses its notifications may
end in (``expect``). A cell without ``arm`` does not apply (``note`` says why) and is shown as such.
SES and SNS are fallbacks: their cells put the primary (SendGrid, Twilio) in an outage first, so every
notification reaches the faulted provider.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tidings_local.chaos.runner import Rig

PROVIDERS = ("stripe", "sendgrid", "twilio", "ses", "sns")
FAULTS = (
    "5xx_burst",
    "429_retry_after",
    "timeout",
    "reset",
    "outage",
    "late_webhooks",
    "dup_reordered_webhooks",
    "redelivery_storm",
    "aws_fault",
    "crash_after_accept",
)
FAULT_TITLES = {
    "5xx_burst": "5xx burst",
    "429_retry_after": "429 + Retry-After",
    "timeout": "timeout (hang past the budget)",
    "reset": "connection reset",
    "outage": "outage longer than the breaker's recovery",
    "late_webhooks": "slow and late webhooks",
    "dup_reordered_webhooks": "duplicated, out-of-order webhooks",
    "redelivery_storm": "webhook redelivery storm",
    "aws_fault": "AWS-side fault (throttled DynamoDB)",
    "crash_after_accept": "container killed after the provider accepted",
}
#: The path of each sandboxed provider's sending operation (what its faults target).
SEND_PATH = {"stripe": "/v1/payment_intents", "sendgrid": "/v3/mail/send", "twilio": "/2010-04-01"}
#: The function that calls each provider (its DynamoDB calls are the ones an AWS-side fault throttles).
CALLER = {
    "stripe": "ChargePaymentFunction",
    "sendgrid": "SendEmailFunction",
    "ses": "SendEmailFunction",
    "twilio": "SendSmsFunction",
    "sns": "SendSmsFunction",
}
PRIMARY_OF = {"ses": "sendgrid", "sns": "twilio"}

DELIVERED = frozenset({"delivered"})
FALLBACK = frozenset({"delivered_with_fallback"})
PARTIAL = frozenset({"partially_delivered"})

Action = Callable[["Rig", int], None]


@dataclass(frozen=True)
class Cell:
    provider: str
    fault: str
    arm: Action | None = None
    after: Callable[[Rig], dict[str, Any]] | None = None
    expect: frozenset[str] = DELIVERED
    payment_method: str = "pm_card_visa"
    needs_aws: bool = False  # needs the chaos run's own AWS fault proxies (not the e2e tests' stack)
    recovery_probe: bool = False  # after healing, one more notification must go through the primary
    note: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.fault}"

    @property
    def applies(self) -> bool:
        return self.arm is not None


# --- arming ------------------------------------------------------------------------------------


def _sandbox_fault(provider: str, kind: str, per_notification: bool = True, **extra: Any) -> Action:
    def arm(rig: Rig, size: int) -> None:
        count = size if per_notification else None
        rig.sandbox(provider).control.inject_fault(
            kind, count=count, path_prefix=SEND_PATH[provider], **extra
        )

    return arm


def _aws_fault(service: str, kind: str, per_notification: bool = True, **extra: Any) -> Action:
    def arm(rig: Rig, size: int) -> None:
        primary = PRIMARY_OF[service]
        rig.sandbox(primary).control.inject_fault("outage", path_prefix=SEND_PATH[primary])
        rig.aws[service].add(kind, count=size if per_notification else None, **extra)

    return arm


def _throttled_dynamodb(provider: str) -> Action:
    def arm(rig: Rig, size: int) -> None:
        if provider in PRIMARY_OF:
            primary = PRIMARY_OF[provider]
            rig.sandbox(primary).control.inject_fault("outage", path_prefix=SEND_PATH[primary])
        # Two throttled requests per notification: boto3's own retries (standard mode) absorb them.
        rig.dynamodb(CALLER[provider]).add("throttle", count=2 * size)

    return arm


def _replay(
    provider: str, *, copies: int, reverse: bool, concurrent: bool
) -> Callable[[Rig], dict[str, Any]]:
    def after(rig: Rig) -> dict[str, Any]:
        from tidings_local.chaos.relay import replay

        deliveries = rig.sandbox(provider).control.webhook_deliveries()
        answers = replay(deliveries, copies=copies, reverse=reverse, concurrent=concurrent)
        return {"replayed": sum(answers.values()), "answers": dict(answers)}

    return after


def _crash_after_accept(provider: str) -> Action:
    """Kill the calling function's container once the provider accepted the send, once per notification
    (the proxy in front of the provider, reached through the function's configuration)."""

    def arm(rig: Rig, size: int) -> None:
        from tidings_local.chaos.crash import provider_accepted

        if provider in PRIMARY_OF:
            primary = PRIMARY_OF[provider]
            rig.sandbox(primary).control.inject_fault("outage", path_prefix=SEND_PATH[primary])
            proxy, predicate = rig.aws[provider], _aws_accepted(provider)
        else:
            proxy, predicate = rig.provider_proxy(provider), provider_accepted("POST", SEND_PATH[provider])
        pool = rig.system.runtime.pool(CALLER[provider])
        proxy.crash_after(predicate, pool.kill_busy, count=size)

    return arm


def _aws_accepted(service: str) -> Any:
    def predicate(method: str, path: str, headers: dict[str, str], body: bytes, status: int) -> bool:
        if status >= 300:
            return False
        if service == "ses":
            return path.startswith("/v2/email/outbound-emails")
        return b"Action=Publish" in body

    return predicate


def _late(provider: str) -> Action:
    def arm(rig: Rig, size: int) -> None:
        rig.relay(provider, "late", delay=1.5)

    return arm


def _noop(rig: Rig, size: int) -> None:
    return None


CRASH_NOTES = {
    "stripe": "the charge is retried (Runtime.ExitError) with the same Idempotency-Key: Stripe replays it",
    "sendgrid": (
        "the send record stays in progress until the dead invocation's deadline, so SES is refused "
        "(send_in_progress); SendGrid's delivery webhook then records the e-mail (docs: the window)"
    ),
    "twilio": (
        "the send record stays in progress until the dead invocation's deadline, so SNS is refused "
        "(send_in_progress); Twilio's status callback then records the SMS (docs: the window)"
    ),
    "ses": "SES sends no webhook Tidings reads: a crash after SES accepted is never corrected (the window)",
    "sns": "SNS sends no webhook Tidings reads: a crash after SNS accepted is never corrected (the window)",
}


def _cells() -> list[Cell]:
    cells: list[Cell] = []
    for provider in ("stripe", "sendgrid", "twilio"):
        three_ds = "pm_card_threeDSecure2Required" if provider == "stripe" else "pm_card_visa"
        # A charge whose every attempt met a 503 is uncertain: parked for reconciliation, never guessed.
        outage_expect = frozenset({"failed", "payment_not_taken"}) if provider == "stripe" else FALLBACK
        cells += [
            Cell(provider, "5xx_burst", _sandbox_fault(provider, "status", status=503)),
            Cell(provider, "429_retry_after", _sandbox_fault(provider, "status", status=429, retry_after=1)),
            Cell(provider, "timeout", _sandbox_fault(provider, "hang", delay=30)),
            Cell(provider, "reset", _sandbox_fault(provider, "reset")),
            Cell(
                provider,
                "outage",
                _sandbox_fault(provider, "outage", per_notification=False),
                expect=outage_expect,
                recovery_probe=True,
            ),
            Cell(
                provider,
                "late_webhooks",
                _late(provider) if provider != "twilio" else _noop,
                after=_replay(provider, copies=1, reverse=False, concurrent=False)
                if provider == "twilio"
                else None,
                payment_method=three_ds,
                note=(
                    "Twilio signs the status-callback URL it posts to, so no relay can sit in between: its "
                    "callbacks are posted again after every notification ended"
                    if provider == "twilio"
                    else ""
                ),
            ),
            Cell(
                provider,
                "dup_reordered_webhooks",
                _noop,
                after=_replay(provider, copies=2, reverse=True, concurrent=False),
                payment_method=three_ds,
            ),
            Cell(
                provider,
                "redelivery_storm",
                _noop,
                after=_replay(provider, copies=5, reverse=False, concurrent=True),
                payment_method=three_ds,
            ),
            Cell(provider, "aws_fault", _throttled_dynamodb(provider), needs_aws=True),
            Cell(
                provider,
                "crash_after_accept",
                _crash_after_accept(provider),
                expect=DELIVERED if provider == "stripe" else DELIVERED | FALLBACK,
                needs_aws=True,
                note=CRASH_NOTES[provider],
            ),
        ]
    no_webhooks = (
        "Tidings takes no delivery webhooks from {name} (its delivery events would come through an SNS "
        "topic or event destination, which the template does not subscribe to): nothing to fault"
    )
    for service in ("ses", "sns"):
        name = service.upper()
        cells += [
            Cell(service, "5xx_burst", _aws_fault(service, "status"), expect=FALLBACK, needs_aws=True),
            Cell(
                service,
                "429_retry_after",
                _aws_fault(service, "throttle"),
                expect=FALLBACK,
                needs_aws=True,
                note=f"{name} throttles with an error code, never a Retry-After header",
            ),
            Cell(
                service,
                "timeout",
                _aws_fault(service, "hang", delay=30),
                expect=FALLBACK | PARTIAL,
                needs_aws=True,
            ),
            Cell(service, "reset", _aws_fault(service, "reset"), expect=FALLBACK, needs_aws=True),
            Cell(
                service,
                "outage",
                _aws_fault(service, "outage", per_notification=False),
                expect=PARTIAL if service == "ses" else PARTIAL | FALLBACK,
                needs_aws=True,
                note=(
                    f"{PRIMARY_OF[service]} and {name} both down: "
                    + (
                        "the e-mail waits on its dead-letter queue for an operator's redrive"
                        if service == "ses"
                        else "the SMS is parked, and a later try after the outage sends it"
                    )
                ),
            ),
            Cell(service, "late_webhooks", note=no_webhooks.format(name=name)),
            Cell(service, "dup_reordered_webhooks", note=no_webhooks.format(name=name)),
            Cell(service, "redelivery_storm", note=no_webhooks.format(name=name)),
            Cell(service, "aws_fault", _throttled_dynamodb(service), expect=FALLBACK, needs_aws=True),
            Cell(
                service,
                "crash_after_accept",
                _crash_after_accept(service),
                expect=FALLBACK | PARTIAL,
                needs_aws=True,
                note=CRASH_NOTES[service],
            ),
        ]
    return cells


MATRIX: tuple[Cell, ...] = tuple(_cells())
BY_KEY = {cell.key: cell for cell in MATRIX}

#: The reduced matrix ``make test`` runs on the e2e tests' shared stack: one fault of each family
#: that needs nothing but the sandboxes (no proxies, no breaker-recovery wait).
REDUCED = ("stripe:5xx_burst", "sendgrid:reset", "twilio:429_retry_after", "sendgrid:dup_reordered_webhooks")


def select(keys: list[str] | None = None, *, with_aws: bool = True) -> list[Cell]:
    if not keys:
        return [cell for cell in MATRIX if with_aws or not cell.needs_aws]
    unknown = [key for key in keys if key not in BY_KEY]
    if unknown:
        raise KeyError(f"no such cell: {', '.join(unknown)} (provider:fault, e.g. stripe:5xx_burst)")
    return [BY_KEY[key] for key in keys]
