"""docs/benchmarks.md from one run's results: ratios first, then the raw numbers and the machine."""

from __future__ import annotations

import json
from typing import Any

from tidings_local.bench import coldstart, resilience

COMMAND = "make bench   # = .venv/bin/python -m tidings_local.bench"


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base > 0 else "n/a"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _coldstart_section(results: list[dict[str, Any]]) -> list[str]:
    by_name = {r["name"]: r for r in results}
    bare, boto3 = by_name[coldstart.BARE], by_name[coldstart.BOTO3]
    rows = []
    for r in results:
        rows.append(
            [
                r["name"],
                _ratio(r["process_ms"], bare["process_ms"]),
                _ratio(r["process_ms"], boto3["process_ms"]),
                _ratio(r["max_rss_mb"], bare["max_rss_mb"]),
                _ratio(r["max_rss_mb"], boto3["max_rss_mb"]),
                f"{r['process_ms']:.0f}",
                f"{r['import_ms']:.0f}",
                f"{r['max_rss_mb']:.1f}",
                str(r["network_attempts"]) + (f" ({r['error']})" if r["error"] else ""),
            ]
        )
    runs = bare["runs"]
    return [
        "## 1. Cold start per Lambda handler",
        "",
        f"Each row is the median of {runs} fresh processes (after one discarded run that writes the",
        "bytecode caches). A process gets the function's environment from template.yaml, fake AWS",
        "credentials and an endpoint on the discard port, and imports `app` from the function's folder,",
        "as the runtime's init phase does. *Process* is wall time from spawn to exit (interpreter start",
        "included), *import* the part spent importing, *peak RSS* the process's high-water mark (VmHWM).",
        "*Network* counts socket connects and name lookups attempted during the import (the probe",
        "refuses them): it must be 0.",
        "",
        *_table(
            [
                "target",
                "time / bare",
                "time / boto3",
                "RSS / bare",
                "RSS / boto3",
                "process ms",
                "import ms",
                "peak RSS MB",
                "network",
            ],
            rows,
        ),
        "",
    ]


def _resilience_section(results: list[dict[str, Any]]) -> list[str]:
    by_name = {r["name"]: r for r in results}
    bare = by_name[resilience.BARE]
    rows = [
        [
            r["name"],
            _ratio(r["median_ms"], bare["median_ms"]),
            f"{r['median_ms']:.2f}",
            f"{r['p90_ms']:.2f}",
            f"{r['mean_ms']:.2f}",
            str(r["requests"]),
        ]
        for r in results
    ]
    return [
        "## 2. Resilience overhead (Stripe charge against the local sandbox)",
        "",
        "The same `POST /v1/payment_intents` to one Stripe sandbox on 127.0.0.1, keep-alive connections,",
        "variants interleaved request by request. *Resilient* is `ProviderFactory().payment_gateway()",
        ".charge()`: time budget, tenacity retry policy, typed error mapping, one redacted log line and",
        "metrics per attempt. *Tables on moto* adds what production has, with the charge function's",
        "template settings: the failure-rate circuit breaker (state cached `TIDINGS_BREAKER_CACHE_SECONDS`,",
        "one atomic counter update per request) and the shared token bucket (one strongly consistent",
        "read and one conditional write per",
        "request) in DynamoDB tables built from the template's own properties, served by moto in",
        "process. The account rate is raised so the bucket never runs dry (waiting for a token is the",
        "limit at work, not overhead).",
        "",
        *_table(["path", "median / bare", "median ms", "p90 ms", "mean ms", "requests"], rows),
        "",
    ]


def _webhook_section(results: list[dict[str, Any]]) -> list[str]:
    stripe = next(r for r in results if r["provider"] == "stripe")
    rows = [
        [
            r["provider"],
            r["scheme"],
            _ratio(r["ms_per_1000"], stripe["ms_per_1000"]),
            f"{r['ms_per_1000']:.1f}",
        ]
        for r in results
    ]
    return [
        "## 3. Webhook signature verification per provider",
        "",
        "`tidings.webhooks` verifying one delivery signed by the sandboxes' own signers, in batches of",
        f"{stripe['verifications']}, median of {stripe['repeats']} batches. Verification only: parsing and",
        "processing the event are not included.",
        "",
        *_table(["provider", "scheme", "cost / Stripe", "ms per 1,000"], rows),
        "",
    ]


def _summary(results: dict[str, Any]) -> list[str]:
    cold = {r["name"]: r for r in results["coldstart"]}
    bare, boto3 = cold[coldstart.BARE], cold[coldstart.BOTO3]
    handlers = [r for r in results["coldstart"] if r["name"] not in (coldstart.BARE, coldstart.BOTO3)]
    rows: list[list[str]] = []
    if handlers:
        heaviest = max(handlers, key=lambda r: r["process_ms"])
        lightest = min(handlers, key=lambda r: r["process_ms"])
        leaky = [r["name"] for r in handlers if r["network_attempts"]]
        failed = [f"{r['name']} ({r['error']})" for r in handlers if r["error"]]
        rows += [
            [
                "cold start, lightest handler vs `import boto3`",
                f"{lightest['name']}",
                _ratio(lightest["process_ms"], boto3["process_ms"]),
            ],
            [
                "cold start, heaviest handler vs `import boto3`",
                f"{heaviest['name']}",
                _ratio(heaviest["process_ms"], boto3["process_ms"]),
            ],
            [
                "cold start, heaviest handler vs bare interpreter",
                f"{heaviest['name']}",
                _ratio(heaviest["process_ms"], bare["process_ms"]),
            ],
            [
                "handlers whose cold start is below `import boto3` alone",
                f"{sum(r['process_ms'] < boto3['process_ms'] for r in handlers)} of {len(handlers)}",
                "-",
            ],
            [
                "network I/O during any handler's import",
                ", ".join(leaky) or "none",
                str(sum(r["network_attempts"] for r in handlers)) + " attempts",
            ],
            [
                "handlers whose import failed (their row measures a partial import)",
                ", ".join(failed) or "none",
                f"{len(failed)} of {len(handlers)}",
            ],
        ]
    lat = {r["name"]: r for r in results["resilience"]}
    for name in (resilience.NO_TABLES, resilience.WITH_TABLES):
        rows.append(
            [
                f"Stripe charge, {name} vs bare httpx (median)",
                f"{lat[name]['requests']} requests",
                _ratio(lat[name]["median_ms"], lat[resilience.BARE]["median_ms"]),
            ]
        )
    hooks = {r["provider"]: r for r in results["webhooks"]}
    for name in ("twilio", "sendgrid"):
        rows.append(
            [
                f"webhook verification, {name} vs stripe",
                hooks[name]["scheme"],
                _ratio(hooks[name]["ms_per_1000"], hooks["stripe"]["ms_per_1000"]),
            ]
        )
    return [
        "## Summary (ratios from this one run)",
        "",
        *_table(["comparison", "subject", "ratio"], rows),
        "",
    ]


def render(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m tidings_local.bench`; every number below comes from one run. Ratios",
        "travel between machines better than milliseconds do; read the absolute figures as this",
        "machine's only.",
        "",
        "Reproduce:",
        "",
        "```sh",
        COMMAND,
        "```",
        "",
        f"Run at {results['started_at']} in {results['duration_seconds']:.0f} s, commit"
        f" `{machine['commit']}`. Machine: {machine['platform']}, {machine['cpus']} CPUs"
        f" ({machine['processor'] or 'processor unknown'}), Python {machine['python']}"
        f" ({machine['implementation']}), load average at start {machine.get('load_average')}.",
        "",
        *_summary(results),
        *_coldstart_section(results["coldstart"]),
        *_resilience_section(results["resilience"]),
        *_webhook_section(results["webhooks"]),
        "## Reading these numbers",
        "",
        "- The machine is shared and small (see above): figures are medians so a noisy neighbour moves",
        "  them less, and the same run measures every side of a ratio, interleaved.",
        "- Cold start here is the import part of Lambda's init phase on this CPU; on Lambda (arm64, the",
        "  function's memory size) absolute times differ, and the runtime's own start is not included.",
        "- moto's DynamoDB runs in process, so the *tables on moto* row costs Python work, not network",
        "  round trips; against real DynamoDB the breaker read is mostly cached and the bucket's read and",
        "  conditional write add a few milliseconds of network per request instead.",
        "- Loopback HTTP to the sandboxes is far faster than a provider over the internet, so these ratios",
        "  are an upper bound on how much the resilient path adds to a real call.",
        "- Saga transitions (issue 13: the happy path stays at 7 states): channel choice adds none. A",
        "  notification with both channels enters the same 7 states (tests/e2e/test_saga_paths.py,",
        "  test_all_delivered); the choice is a set of rules in CheckPaymentStatus, which is on the path",
        "  anyway, so a payment alone enters 5 and an SMS alone 6 (tests/e2e/test_saga_suppressions.py).",
        "  An e-mail-only notification still enters 7: its SendSms step runs and records `not_requested`",
        "  without a provider call (one short Lambda invocation), because a Choice after the e-mail would",
        "  be an eighth state on every two-channel notification. A suppressed channel is the same: its",
        "  send step runs and sends nothing.",
        "",
        "## Raw results",
        "",
        "```json",
        json.dumps(results, indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)
