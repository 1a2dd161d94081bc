"""Run the chaos matrix on the local system and judge every notification by what the sandboxes saw.

For each cell: clean slate (sandboxes, breakers, proxies), arm the fault, send a batch of notifications
through the real API (each with its own e-mail address and phone number, so effects count by
recipient), wait until every one has a final status, heal, play the cell's after-effects (webhook
replays), wait until the system is quiet, then collect the evidence (the notifications, the sandboxes'
objects and request logs, SES and SNS as moto holds them, every execution's history, the dead-letter
queues) and check it (``checks.judge``).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tidings_local.chaos import checks
from tidings_local.chaos.matrix import CALLER, Cell
from tidings_local.chaos.proxy import FaultProxy
from tidings_local.chaos.relay import WebhookRelay
from tidings_local.stack.retries import SHORT_RETRIES

FINAL = frozenset(
    {
        "delivered",
        "delivered_with_fallback",
        "partially_delivered",
        "payment_declined",
        "payment_not_taken",
        "compensated",
        "failed",
    }
)

#: The saga's retry policy for the run: the local systems' short one, with a second charge attempt.
CHAOS_SAGA = {**SHORT_RETRIES, "ChargeRetryMaxAttempts": "2"}
#: The provider layer's settings for the run: in-call retry sleeps scaled down, a 2 s HTTP timeout (the
#: budget a hang must outlast), breaker state read fresh, a 1 s breaker recovery, and a breaker that may
#: open on a cell's few calls (5 in its window, not the template's 20).
LAYER_SETTINGS = {
    "TIDINGS_RETRY_TIME_SCALE": "0.1",
    "TIDINGS_HTTP_TIMEOUT_SECONDS": "2",
    "TIDINGS_CALL_BUDGET_SECONDS": "8",
    "TIDINGS_BREAKER_CACHE_SECONDS": "0",
    "TIDINGS_BREAKER_RECOVERY_SECONDS": "1",
    "TIDINGS_BREAKER_MINIMUM_CALLS": "5",
}
RECEIPT_FROM_ADDRESS = "receipts@example.com"
#: Queues a function consumes: the system is quiet when they are all empty.
CONSUMED_QUEUES = ("WebhookQueue", "SmsOutageQueue", "EmailRetryQueue", "CompensationRetryQueue", "BulkQueue")
#: Queues where a failure is parked for an operator (peeked, never consumed).
PARKING_QUEUES = ("EmailDeadLetterQueue", "SmsDeadLetterQueue", "CompensationDeadLetterQueue")
#: Where each sending function finds its provider: a crash proxy sits there in the run's own system.
PROVIDER_URLS = {
    "stripe": "STRIPE_API_BASE_URL",
    "sendgrid": "SENDGRID_API_BASE_URL",
    "twilio": "TWILIO_API_BASE_URL",
}
CELL_DEADLINE_SECONDS = 300
API_TIMEOUT_SECONDS = 60

Progress = Callable[[str], None]


class Rig:
    """The local system plus the levers the matrix pulls: sandboxes, AWS fault proxies, webhook relays."""

    def __init__(
        self,
        system: Any,
        *,
        aws: dict[str, FaultProxy] | None = None,
        dynamodb: dict[str, FaultProxy] | None = None,
        providers: dict[str, FaultProxy] | None = None,
        exclusive: bool = False,
        layer_settings: dict[str, str] | None = None,
    ) -> None:
        self.system = system
        self.aws = aws or {}
        self._dynamodb = dynamodb or {}
        self._providers = providers or {}
        self.exclusive = exclusive  # the rig owns the system: it may purge the parking queues
        self._relays: list[WebhookRelay] = []
        self.http = httpx.Client(base_url=system.api_url, timeout=API_TIMEOUT_SECONDS, trust_env=False)
        self.policy = checks.Policy.from_system(
            system, LAYER_SETTINGS if layer_settings is None else layer_settings
        )

    # --- levers ---------------------------------------------------------------------------------

    def sandbox(self, name: str) -> Any:
        return self.system.sandboxes[name]

    def dynamodb(self, logical_id: str) -> FaultProxy:
        return self._dynamodb[logical_id]

    def provider_proxy(self, provider: str) -> FaultProxy:
        """The proxy in front of ``provider``'s sandbox for the function that calls it."""
        return self._providers[provider]

    def relay(self, provider: str, mode: str, **options: Any) -> WebhookRelay:
        relay = WebhookRelay(self.system.api_url, mode, **options)
        self._relays.append(relay)
        self.sandbox(provider).control.set_webhook(f"{relay.url}/webhooks/{provider}")
        return relay

    def reset(self) -> None:
        for sandbox in self.system.sandboxes.values():
            sandbox.control.reset()
        for proxy in self._proxies():
            proxy.clear()
        for relay in self._relays:
            relay.close()
        self._relays = []
        dynamodb = self.system.boto3_client("dynamodb")
        table = self.system.physical_id("CircuitBreakerTable")
        for item in dynamodb.scan(TableName=table)["Items"]:
            dynamodb.delete_item(TableName=table, Key={"id": item["id"]})
        if self.exclusive:
            sqs = self.system.boto3_client("sqs")
            for logical_id in PARKING_QUEUES:
                with contextlib.suppress(Exception):
                    sqs.purge_queue(QueueUrl=self.system.physical_id(logical_id))

    def _proxies(self) -> list[FaultProxy]:
        return [*self.aws.values(), *self._dynamodb.values(), *self._providers.values()]

    def heal(self) -> None:
        for sandbox in self.system.sandboxes.values():
            sandbox.control.clear_faults()
        for proxy in self._proxies():
            proxy.clear()

    def close(self) -> None:
        for relay in self._relays:
            relay.close()
        self.http.close()

    # --- the API --------------------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.system.token()}"}

    def notify(self, body: dict[str, Any]) -> str:
        answer = self.http.post("/notifications", json=body, headers=self.headers())
        if answer.status_code != 202:
            raise RuntimeError(f"POST /notifications answered {answer.status_code}: {answer.text[:300]}")
        return str(answer.json()["notification_id"])

    def get(self, notification_id: str) -> dict[str, Any]:
        answer = self.http.get(f"/notifications/{notification_id}", headers=self.headers())
        answer.raise_for_status()
        return dict(answer.json())

    @classmethod
    @contextlib.contextmanager
    def own_system(cls, log_sink: Callable[[str, str], None] | None = None) -> Iterator[Rig]:
        """A local system of the run's own, with AWS fault proxies in front of SES, SNS and the
        DynamoDB of every function that calls a provider (set before any container starts)."""
        from tidings_local.stack.system import LocalSystem

        options: dict[str, Any] = {"overrides": CHAOS_SAGA}
        if log_sink is not None:
            options["log_sink"] = log_sink
        with LocalSystem.start(**options) as system:
            aws = {"ses": FaultProxy(system.moto_url, "ses"), "sns": FaultProxy(system.moto_url, "sns")}
            dynamodb = {lid: FaultProxy(system.moto_url, f"dynamodb-{lid}") for lid in set(CALLER.values())}
            for spec in system.runtime.specs.values():
                spec.environment.update(LAYER_SETTINGS)
            for logical_id in ("SendEmailFunction", "RetryDeliveryFunction"):
                system.runtime.pool(logical_id).spec.environment["AWS_ENDPOINT_URL_SESV2"] = aws["ses"].url
            for logical_id in ("SendSmsFunction", "RetryDeliveryFunction"):
                system.runtime.pool(logical_id).spec.environment["AWS_ENDPOINT_URL_SNS"] = aws["sns"].url
            for logical_id, proxy in dynamodb.items():
                system.runtime.pool(logical_id).spec.environment["AWS_ENDPOINT_URL_DYNAMODB"] = proxy.url
            providers = {name: FaultProxy(system.sandboxes[name].base_url, name) for name in PROVIDER_URLS}
            for name, variable in PROVIDER_URLS.items():
                system.runtime.pool(CALLER[name]).spec.environment[variable] = providers[name].url
            system.boto3_client("ses").verify_email_identity(EmailAddress=RECEIPT_FROM_ADDRESS)
            rig = cls(system, aws=aws, dynamodb=dynamodb, providers=providers, exclusive=True)
            try:
                yield rig
            finally:
                rig.close()
                for proxy in [*aws.values(), *dynamodb.values(), *providers.values()]:
                    proxy.close()


# --- one cell ----------------------------------------------------------------------------------


@dataclass
class Sent:
    notification_id: str
    email: str
    phone: str
    first_final: str | None = None


@dataclass
class CellResult:
    cell: Cell
    size: int
    seconds: float = 0.0
    passed: int = 0
    failures: dict[str, list[str]] = field(default_factory=dict)  # notification id -> what failed
    counts: dict[str, int] = field(default_factory=dict)  # effects and faults seen, for the table
    statuses: dict[str, int] = field(default_factory=dict)
    error: str | None = None  # the cell could not run to the end

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failures and self.passed == self.size

    @property
    def label(self) -> str:
        if not self.cell.applies:
            return "n/a"
        if self.error:
            return f"FAIL ({self.error[:40]})"
        if self.ok:
            return f"pass {self.passed}/{self.size}"
        kinds: dict[str, int] = {}
        for problems in self.failures.values():
            for problem in {p.split(":", 1)[0] for p in problems}:
                kinds[problem] = kinds.get(problem, 0) + 1
        detail = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        return f"FAIL {self.passed}/{self.size} ({detail})"


_phones = iter(range(10_000, 100_000))


def _contacts(run: str) -> tuple[str, str]:
    number = next(_phones)
    return f"chaos-{run}-{number}@example.com", f"+4477009{number:05d}"


def order(email: str, phone: str, payment_method: str) -> dict[str, Any]:
    return {
        "order_reference": f"chaos-{uuid.uuid4().hex[:16]}",
        "customer": {"name": "Chaos Monkey", "email": email, "phone": phone},
        "payment": {"amount": 1999, "currency": "gbp", "payment_method": payment_method},
        "receipt": {"subject": "Your receipt", "text": "Thank you for your order."},
        "sms": {"text": "Your order is paid. Thank you!"},
    }


def run_cell(rig: Rig, cell: Cell, size: int, progress: Progress | None = None) -> CellResult:
    result = CellResult(cell, size)
    if not cell.applies:
        return result
    started = time.monotonic()
    run = uuid.uuid4().hex[:6]
    try:
        rig.reset()
        assert cell.arm is not None
        cell.arm(rig, size)
        batch = []
        for _ in range(size):
            email, phone = _contacts(run)
            batch.append(Sent(rig.notify(order(email, phone, cell.payment_method)), email, phone))
        _wait_final(rig, batch, progress, cell)
        rig.heal()
        after = cell.after(rig) if cell.after else {}
        probe: Sent | None = None
        if cell.recovery_probe:
            probe = _recovery_probe(rig, run)
        _wait_quiet(rig)
        evidence = checks.collect(
            rig, [s.notification_id for s in batch], {s.notification_id: s for s in batch}
        )
        verdicts = checks.judge(evidence, rig.policy, cell)
        for sent in batch:
            problems = verdicts.get(sent.notification_id, [])
            if problems:
                result.failures[sent.notification_id] = problems
            else:
                result.passed += 1
        if probe is not None:
            probe_problems = checks.judge_probe(rig, probe, cell)
            if probe_problems:
                result.failures[probe.notification_id] = probe_problems
        result.counts = {**evidence.counts(), **{k: v for k, v in after.items() if isinstance(v, int)}}
        result.statuses = evidence.status_counts()
    except Exception as exc:  # a cell that cannot finish is a failed cell, never a crashed run
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        result.seconds = time.monotonic() - started
        with contextlib.suppress(Exception):
            rig.heal()
    return result


def _wait_final(rig: Rig, batch: list[Sent], progress: Progress | None, cell: Cell) -> None:
    deadline = time.monotonic() + CELL_DEADLINE_SECONDS
    completed: set[str] = set()
    reported = 0
    while True:
        waiting = [s for s in batch if s.first_final is None]
        if not waiting:
            return
        for sent in waiting:
            current = rig.get(sent.notification_id)
            if current["status"] in FINAL:
                sent.first_final = current["status"]
            elif current["status"] == "awaiting_payment_action" and sent.notification_id not in completed:
                payment_intent = current["payment"]["payment_intent_id"]
                rig.sandbox("stripe").control.complete_action(payment_intent, "succeeded")
                completed.add(sent.notification_id)
        done = sum(1 for s in batch if s.first_final)
        if progress and done != reported:
            progress(f"{cell.key}: {done}/{len(batch)} final")
            reported = done
        if time.monotonic() > deadline:
            stuck = {
                s.notification_id: rig.get(s.notification_id)["status"] for s in batch if not s.first_final
            }
            raise TimeoutError(f"not final after {CELL_DEADLINE_SECONDS} s: {json.dumps(stuck)[:300]}")
        time.sleep(0.3)


def _recovery_probe(rig: Rig, run: str) -> Sent:
    """After an outage longer than the breaker's recovery: one more notification, after the recovery
    time, must go through the primary provider again (the breaker half-opened and closed)."""
    time.sleep(rig.policy.breaker_recovery_seconds + 0.5)  # the system's own recovery time
    email, phone = _contacts(run)
    probe = Sent(rig.notify(order(email, phone, "pm_card_visa")), email, phone)
    deadline = time.monotonic() + CELL_DEADLINE_SECONDS
    while probe.first_final is None:
        status = rig.get(probe.notification_id)["status"]
        if status in FINAL:
            probe.first_final = status
        elif time.monotonic() > deadline:
            raise TimeoutError("the recovery probe did not finish")
        else:
            time.sleep(0.3)
    return probe


def _wait_quiet(rig: Rig, timeout: float = CELL_DEADLINE_SECONDS) -> None:
    """No relay or sandbox webhook pending and every consumed queue empty, twice in a row."""
    system = rig.system
    sqs = system.boto3_client("sqs")
    urls = []
    for logical_id in CONSUMED_QUEUES:
        with contextlib.suppress(Exception):
            urls.append(system.physical_id(logical_id))
    counters = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 2:
        busy = any(not relay.idle for relay in rig._relays)
        for sandbox in system.sandboxes.values():
            sandbox.control.wait_for_webhooks(timeout=max(1.0, deadline - time.monotonic()))
        for url in urls:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=counters)["Attributes"]
            busy = busy or any(int(value) for value in attributes.values())
        quiet = 0 if busy else quiet + 1
        if time.monotonic() > deadline:
            raise TimeoutError(f"the system was still busy after {timeout} s")
        time.sleep(0.5)


def run_matrix(rig: Rig, cells: list[Cell], size: int, progress: Progress | None = None) -> list[CellResult]:
    results = []
    for number, cell in enumerate(cells, start=1):
        if progress and cell.applies:
            progress(f"[{number}/{len(cells)}] {cell.key} ({size} notifications)")
        result = run_cell(rig, cell, size, progress)
        results.append(result)
        if progress:
            progress(f"[{number}/{len(cells)}] {cell.key}: {result.label} in {result.seconds:.1f} s")
            for nid, problems in list(result.failures.items())[:2]:
                progress(f"    {nid}: {'; '.join(problems)}")
            if result.error:
                progress(f"    {result.error}")
    return results
