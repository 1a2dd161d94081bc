"""A bulk request completes at the providers' rate, paced by the shared token bucket, none of its
notifications failing for it.

Both run in ``make load`` (marker ``load``): a smoke batch of 100 first, then the acceptance figure of
1,000 (TIDINGS_BULK_ITEMS changes its size: 10000 for the long run, sent as bulk requests of 1,000 as
the client's quota allows). Neither is in ``make test``: even the smoke batch is paced at
5 requests/s per provider, and ``make test`` has an 8-minute budget. The bulk route itself is exercised in
``make test`` by the SDK and operator-timeline tests.

Each run prints and records (docs/load.json, one entry per size; the README quotes it) its items per
second, its efficiency (items per second over the providers' rate: each notification makes one request
to each of the three providers, limited independently, so the rate is also the most items per second),
the share of provider requests answered 429, the local system's peak memory and the machine's load
average. The figures are printed, never asserted: what is asserted is that everything was delivered, at
most 2 % of provider requests were refused, and each order was charged once.
"""

import json
import os
import re
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from support.e2e import API_TIMEOUT_SECONDS, FAST_SAGA, FINAL, NotifyClient, order_body, wait_until_idle

from tidings_local.stack.resources import TreeUsage, UsageSampler
from tidings_local.stack.system import PROJECT_ROOT, LocalSystem
from tidings_sdk import RetryPolicy, TidingsClient

pytestmark = pytest.mark.e2e

SMOKE_ITEMS = 100
LOAD_ITEMS = int(os.environ.get("TIDINGS_BULK_ITEMS", "1000"))
#: The most items one bulk request carries: the client's quota burst (ClientSendBurst's default; the API
#: takes up to MAX_BULK_ITEMS, 5,000). A larger run sends several, each when the quota allows it.
BULK_REQUEST_LIMIT = 1000
#: A bulk request the quota refuses (429 quota_exceeded) is sent again after its Retry-After (a burst's
#: refill, 200 s at the providers' rate); nothing else is retried, so any other refusal still fails the run.
QUOTA_PACED = RetryPolicy(
    max_attempts=5, max_delay_seconds=300.0, retry_statuses=frozenset({429}), retry_transport_errors=False
)
#: Requests per second each sandbox allows (far below a real account's limits) and its burst: one request
#: per 200 ms at most: the saga's concurrent containers must be paced by the shared bucket, or be refused.
SANDBOX_RATE = 5
SANDBOX_BURST = 1
PROVIDERS = ("stripe", "sendgrid", "twilio")
#: The shared bucket runs 5 % under the provider's rate, at its burst, as an operator sets it from the
#: provider's documented limit (template parameters and TIDINGS_RATE_LIMIT_BURST_SECONDS): a request
#: leaves a few milliseconds after its slot (tens on a loaded machine), and a limiter with a burst of one
#: refuses any request that arrives even a millisecond early: slots exactly one interval apart were
#: refused one in three, 3 % under the rate still one in forty.
BUCKET_RATE = round(SANDBOX_RATE * 0.95, 3)
LOAD_OVERRIDES = {
    **FAST_SAGA,
    "StripeRequestsPerSecond": str(BUCKET_RATE),
    "SendGridRequestsPerSecond": str(BUCKET_RATE),
    "TwilioRequestsPerSecond": str(BUCKET_RATE),
    "BulkStartConcurrency": "2",
    # The client's quota refills at the providers' rate: a run larger than its burst waits for it (429
    # quota_exceeded, Retry-After) rather than starting more sagas than the providers can serve. (10,000
    # at once was 11,000 threads in moto, one per execution and connection: moto stopped answering.)
    "ClientSendsPerSecond": str(SANDBOX_RATE),
}
#: Each slot set 0.1 s ahead: the bucket's write (a DynamoDB call on a busy moto) is done before it.
BUCKET_ENV = {
    "TIDINGS_RATE_LIMIT_BURST_SECONDS": str(SANDBOX_BURST / BUCKET_RATE),
    "TIDINGS_RATE_LIMIT_LEAD_SECONDS": "0.1",
}
#: The functions that call a provider: each keeps a request waiting at its bucket's next slot only with
#: more containers than the local system's default of 4 (an invocation spends ~0.4 s in its own reads and
#: writes around the wait); on AWS they scale with the load.
PROVIDER_STEPS = ("ChargePaymentFunction", "SendEmailFunction", "SendSmsFunction")
PROVIDER_STEP_CONTAINERS = 6
#: Every function a bulk run invokes: each has all its containers warm before the clock starts.
BULK_PATH = (
    *PROVIDER_STEPS,
    "NotifyApiFunction",
    "StartBulkFunction",
    "RecordOutcomeFunction",
    "WebhookReceiverFunction",
    "WebhookProcessorFunction",
    "PublishStatusEventsFunction",
)
#: The queues a bulk run's work goes through: the bulk queue, the delivery webhooks, the shop's callbacks.
BULK_QUEUES = ["BulkQueue", "WebhookQueue", "CallbackQueue"]
#: Enough notifications at once for every container of the provider steps to serve one.
WARM_UP_ITEMS = 4 * PROVIDER_STEP_CONTAINERS
#: A deadline for one invocation on a busy machine, never what the test measures (as in conftest.py).
FUNCTION_TIMEOUT_SECONDS = 120.0
FIGURES = PROJECT_ROOT / "docs" / "load.json"
LOGS = PROJECT_ROOT / ".pytest_cache" / "load-functions.log"
#: Every provider request's arrival time, status and path, for a look at the pacing after a run.
REQUESTS = PROJECT_ROOT / ".pytest_cache" / "load-requests.json"
_REPORT = re.compile(r"^REPORT RequestId: \S+\tDuration: ([0-9.]+) ms")


class FunctionLogs:
    """Every function's log lines into one file (a run writes hundreds of thousands: a terminal would
    slow the run it shows), and each function's invocation durations from its REPORT lines."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("w", encoding="utf-8")
        self._lock = threading.Lock()
        self.durations: dict[str, list[float]] = defaultdict(list)

    def __call__(self, logical_id: str, line: str) -> None:
        with self._lock:
            self._file.write(f"[{logical_id}] {line}\n")
            found = _REPORT.match(line)
            if found:
                self.durations[logical_id].append(float(found.group(1)))

    def close(self) -> None:
        with self._lock:
            self._file.close()


@pytest.fixture(scope="module")
def function_logs():
    logs = FunctionLogs(LOGS)
    yield logs
    logs.close()


@pytest.fixture(scope="module")
def system(function_logs):
    """A local system of the load run's own: moto and the sandboxes in processes of their own (as
    `make run` has them), no fault proxies or outage switches in the way (those of the other end-to-end
    tests), the shared buckets at the sandboxes' rate and burst, every container of the functions a bulk
    run invokes warm before the clock starts (a steady stream of traffic keeps Lambda containers warm)."""
    with LocalSystem.start(overrides=LOAD_OVERRIDES, log_sink=function_logs, own_processes=True) as local:
        for name, spec in local.runtime.specs.items():
            spec.environment.update(BUCKET_ENV)
            spec.timeout = max(spec.timeout, FUNCTION_TIMEOUT_SECONDS)
            if name in PROVIDER_STEPS:
                spec.max_concurrency = PROVIDER_STEP_CONTAINERS
        local.runtime.warm_all()
        for name in BULK_PATH:
            pool = local.runtime.pool(name)
            pool.warm(containers=pool.spec.max_concurrency)
        _serve_warm_up_traffic(local)
        yield local


def _serve_warm_up_traffic(system) -> None:
    """A bulk of WARM_UP_ITEMS before any clock starts: a warm Lambda container has served requests, so
    its clients (boto3, the providers', the secrets they read) are built; a container only started has
    them all to build in the measured run's first seconds, on a machine busy with the run."""
    saga = NotifyClient(system)
    run = uuid.uuid4().hex[:8]
    accepted = saga.sdk.create_bulk([order_body(f"warm-{run}-{n:04d}") for n in range(WARM_UP_ITEMS)])
    _wait_for_final_statuses(system, saga, [accepted.bulk_id], WARM_UP_ITEMS, time.monotonic())
    wait_until_idle(system, queues=BULK_QUEUES)


@pytest.fixture
def saga(system):
    for sandbox in system.sandboxes.values():
        sandbox.control.reset()
    dynamodb = system.boto3_client("dynamodb")
    for logical_id in ("CircuitBreakerTable", "RateLimitTable"):
        table = system.physical_id(logical_id)
        for item in dynamodb.scan(TableName=table)["Items"]:
            dynamodb.delete_item(TableName=table, Key={"id": item["id"]})
    return NotifyClient(system)


@pytest.fixture
def bulk_run(system, saga, function_logs):
    """Runs a bulk request; afterwards waits until its delivery webhooks have all been processed, so the
    next test starts on a quiet system (whether this one passed or not)."""
    yield lambda items: _a_bulk_request_completes_at_the_providers_rate(system, saga, function_logs, items)
    wait_until_idle(system, queues=BULK_QUEUES)


@pytest.mark.load
@pytest.mark.timeout(900)  # a deadline for a busy machine, not what the test measures
def test_a_bulk_request_completes_within_the_providers_rate_limits(bulk_run):
    bulk_run(SMOKE_ITEMS)


@pytest.mark.load
@pytest.mark.timeout(6 * 3600)
def test_a_thousand_notifications_complete_within_the_providers_rate_limits(bulk_run):
    bulk_run(LOAD_ITEMS)


def _a_bulk_request_completes_at_the_providers_rate(system, saga, logs, size: int) -> None:
    # Given every provider sandbox rate-limits hard (429 with Retry-After)
    limits = [
        system.sandboxes[name].control.set_rate_limit(SANDBOX_RATE, SANDBOX_BURST) for name in PROVIDERS
    ]
    run = uuid.uuid4().hex[:8]
    items = [order_body(f"bulk-{run}-{n:04d}") for n in range(size)]
    for durations in logs.durations.values():
        durations.clear()
    usage = UsageSampler().start()

    # When they are sent in one bulk request (a larger run: several, each as the client's quota allows,
    # the SDK waiting out its 429's Retry-After)
    started = time.monotonic()
    bulk_ids = []
    with TidingsClient(
        system.api_url, token=system.token, retry=QUOTA_PACED, timeout=API_TIMEOUT_SECONDS
    ) as sender:
        for first in range(0, size, BULK_REQUEST_LIMIT):
            chunk = items[first : first + BULK_REQUEST_LIMIT]
            # (through the SDK, whose create_bulk raises its typed error on anything but a 202)
            accepted = sender.create_bulk(chunk)
            assert (accepted.accepted, accepted.rejected) == (len(chunk), 0)
            assert accepted.status_url == f"/notifications/bulk/{accepted.bulk_id}"
            bulk_ids.append(accepted.bulk_id)

    # Then every item reaches a final status, read per item from the bulk status route (any answer but
    # a 200 raises)
    summaries = _wait_for_final_statuses(system, saga, bulk_ids, size, started)
    elapsed = time.monotonic() - started
    usage.stop()

    # No rate-limited request ended in a failure: everything was delivered (at worst by a fallback)
    statuses = Counter(item["notification_status"] for summary in summaries for item in summary["items"])
    assert set(statuses) <= {"delivered", "delivered_with_fallback"}, statuses
    # The limits were in force at every sandbox, and the shared token bucket paced the saga's calls to
    # them: at most 2% were refused with a 429 (the bar of docs/benchmarks.md); each order was charged
    # under one idempotency key (one PaymentIntent)
    assert all(limit == {"per_second": SANDBOX_RATE, "burst": SANDBOX_BURST} for limit in limits), limits
    requests = {name: system.sandboxes[name].control.requests() for name in PROVIDERS}
    provider_requests = [r for name in PROVIDERS for r in requests[name]]
    rejected = sum(1 for request in provider_requests if request["status"] == 429)
    REQUESTS.write_text(
        json.dumps(
            {
                name: [(r["timestamp"], r["status"], r["path"]) for r in reqs]
                for name, reqs in requests.items()
            }
        )
    )
    figures = _figures(system, size, elapsed, requests, usage, logs)
    _report(figures)
    charged = Counter(
        request["headers"].get("idempotency-key") or request["headers"].get("Idempotency-Key")
        for request in requests["stripe"]
        if request["method"] == "POST"
        and request["path"].startswith("/v1/payment_intents")
        and request["status"] == 200
    )
    assert len(charged) == size
    # (the pacing last: a run refused too often still says whether each order was charged once)
    assert rejected <= 0.02 * len(provider_requests), (rejected, len(provider_requests))


def _wait_for_final_statuses(system, saga, bulk_ids: list[str], size: int, started: float) -> list[dict]:
    """Each bulk request's status once all ``size`` items are final. The route reads every item and its
    notification, so it is asked once a second only when the end is near (as many SMS answered as
    items), and otherwise every 30 s (an SMS sent by the fallback is not counted by the sandbox)."""
    twilio = system.sandboxes["twilio"].control
    asked = 0.0
    while True:
        near = sum(n for status, n in twilio.request_counts("/2010-04-01").items() if status.startswith("2"))
        if near >= size or time.monotonic() - asked >= 30:
            asked = time.monotonic()
            summaries = [
                saga.sdk.get_bulk(bulk_id).model_dump(mode="json", exclude_unset=True) for bulk_id in bulk_ids
            ]
            final = sum(
                n for summary in summaries for status, n in summary["counts"].items() if status in FINAL
            )
            if final == size:
                return summaries
        assert time.monotonic() - started < 5 * 3600, "the bulk run did not end"
        time.sleep(0.5 if near < size else 1.0)


def _figures(
    system, size: int, elapsed: float, requests: dict, usage: UsageSampler, logs: FunctionLogs
) -> dict:
    total = sum(len(r) for r in requests.values())
    refused = {name: sum(1 for r in reqs if r["status"] == 429) for name, reqs in requests.items()}
    durations = {
        name: round(sum(values) / len(values), 1) for name, values in sorted(logs.durations.items()) if values
    }
    mib = 1024 * 1024
    first_half, second_half, peak = usage.peak(0, 0.5), usage.peak(0.5, 1), usage.peak()
    main, moto = {os.getpid()}, {system.moto.pid} - {os.getpid()}
    sandboxes = {s._group.pid for s in system.sandboxes.values() if hasattr(s, "_group")}
    cpu = {
        "this process": usage.cpu_seconds(main),
        "moto": usage.cpu_seconds(moto),
        "sandboxes": usage.cpu_seconds(sandboxes),
        "functions": usage.cpu_seconds() - usage.cpu_seconds(main | moto | sandboxes),
    }
    parts = {"this process": main, "moto": moto, "sandboxes": sandboxes}

    def pss_by_part(sample: TreeUsage) -> dict[str, int]:
        functions = set(sample.pss_by_pid) - main - moto - sandboxes
        return {
            name: round(sample.pss_of(pids) / mib) for name, pids in {**parts, "functions": functions}.items()
        }

    return {
        "items": size,
        "seconds": round(elapsed, 1),
        "items_per_second": round(size / elapsed, 3),
        "provider_rate_per_second": SANDBOX_RATE,
        "efficiency": round(size / elapsed / SANDBOX_RATE, 3),
        "provider_requests": total,
        "answered_429": sum(refused.values()),
        "share_429_percent": round(100 * sum(refused.values()) / max(1, total), 2),
        "answered_429_by_provider": refused,
        "peak_rss_mib": round(peak.rss_bytes / mib),
        "peak_pss_mib": round(peak.pss_bytes / mib),
        "peak_pss_mib_first_half": round(first_half.pss_bytes / mib),
        "peak_pss_mib_second_half": round(second_half.pss_bytes / mib),
        "processes": peak.processes,
        # where the peak was held, and the same at the run's start: what grew with the run
        "peak_pss_mib_by_process": pss_by_part(peak),
        "start_pss_mib_by_process": pss_by_part(usage.samples[0]),
        "cpu_seconds_per_item": {name: round(seconds / size, 3) for name, seconds in cpu.items()},
        "mean_invocation_ms": durations,
        "load_average_1_5_15": [round(value, 2) for value in os.getloadavg()],
        "cpus": os.cpu_count(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _report(figures: dict) -> None:
    recorded = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    recorded[str(figures["items"])] = figures
    FIGURES.write_text(json.dumps(dict(sorted(recorded.items(), key=lambda kv: int(kv[0]))), indent=2) + "\n")
    rows = [
        ("items", "s", "items/s", "efficiency", "429 share", "peak RSS / PSS MiB", "load avg"),
        *(
            (
                f"{f['items']:,}",
                f"{f['seconds']:.0f}",
                f"{f['items_per_second']:.2f}",
                f"{f['efficiency']:.2f}",
                f"{f['share_429_percent']:.2f} % ({f['answered_429']}/{f['provider_requests']})",
                f"{f['peak_rss_mib']} / {f['peak_pss_mib']}",
                " ".join(f"{v:.1f}" for v in f["load_average_1_5_15"]),
            )
            for f in recorded.values()
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"\nbulk runs, sandboxes at {SANDBOX_RATE} requests/s, burst {SANDBOX_BURST} ({FIGURES.name}):")
    for row in rows:
        print("  " + "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    print(f"  CPU seconds per item ({figures['items']:,} items): {figures['cpu_seconds_per_item']}")
    print(f"  PSS MiB at the start: {figures['start_pss_mib_by_process']}")
    print(f"  PSS MiB at the peak: {figures['peak_pss_mib_by_process']}")
    print(f"  mean invocation ms: {figures['mean_invocation_ms']}")
