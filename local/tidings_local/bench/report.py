"""docs/benchmarks.md from one run's results: ratios first, then the raw numbers and the machine."""

from __future__ import annotations

import json
from typing import Any

from tidings_local.bench import coldstart, providers, resilience

COMMAND = (
    "make bench   # builds .tools/bench-layer, .tools/bench-sdks and .tools/bench-layer-sdks from\n"
    "             # uv.lock, then runs .venv/bin/python -m tidings_local.bench --layer-python ...\n"
    "             # --sdk-python ... --layer-sdk-python ..."
)


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base > 0 else "n/a"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


#: The issue's bar for a handler's cold import, as a multiple of its floor (reported, never asserted).
HANDLER_BAR = 1.3


def _floor_rows(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in results["coldstart"] if r["name"].startswith("floor: ")}


def _handlers(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in results["coldstart"] if r.get("floor")]


def _coldstart_section(results: dict[str, Any]) -> list[str]:
    cold = results["coldstart"]
    by_name = {r["name"]: r for r in cold}
    bare = by_name[coldstart.BARE]
    floors = _floor_rows(results)
    rows = []
    for r in _handlers(results):
        floor = floors[r["floor"]]
        rows.append(
            [
                r["name"],
                r["floor"].removeprefix("floor: "),
                _ratio(r["import_ms"], floor["import_ms"]),
                _ratio(r["process_ms"], floor["process_ms"]),
                _ratio(r["max_rss_mb"], floor["max_rss_mb"]),
                f"{r['import_ms']:.0f}",
                f"{floor['import_ms']:.0f}",
                f"{r['process_ms']:.0f}",
                f"{r['max_rss_mb']:.1f}",
                "loaded" if r.get("xray_loaded") else "-",
                str(r["network_attempts"]) + (f" ({r['error']})" if r["error"] else ""),
            ]
        )
    used_by: dict[str, list[str]] = {}
    for function, floor_name in sorted(results.get("floors", {}).items()):
        used_by.setdefault(floor_name, []).append(function.removesuffix("Function"))
    statements = {floor.name: floor.statement for floor in coldstart.FLOORS.values()}
    floor_rows = [
        [
            name.removeprefix("floor: "),
            "`" + "; ".join(statements.get(name, "").splitlines()) + "`",
            f"{r['import_ms']:.0f}",
            f"{r['process_ms']:.0f}",
            f"{r['max_rss_mb']:.1f}",
            ", ".join(used_by.get(name, [])),
        ]
        for name, r in floors.items()
    ]
    runs = bare["runs"]
    return [
        "## 1. Cold start per Lambda handler, against its floor",
        "",
        f"Each time is the fastest of {runs} fresh processes (other work on this shared machine only ever",
        "adds time; the medians are in the raw results), after one discarded run that writes the",
        "bytecode caches, every target probed in turn in the same rounds. A process gets the function's",
        "environment from template.yaml as deployed: its variables, and for `Tracing: Active` the X-Ray",
        "variables Lambda sets, so the Powertools Tracer is on as in production (no `AWS_SAM_LOCAL`). It",
        "imports `app` from the function's folder, as the runtime's init phase does, in an environment",
        "holding the layer's packages only. *Import* is the time spent importing (the ratio's subject),",
        "*process* the wall time from spawn to exit (interpreter start included), *peak RSS* the",
        "process's high-water mark (VmHWM). *X-Ray SDK* says whether the import loaded it. *Network*",
        "counts socket connects, datagrams and name lookups attempted during the import (the probe",
        "refuses them): it must be 0.",
        "",
        "A handler's *floor* is what any Lambda doing its job imports: a bare interpreter importing",
        "boto3, building one client of the handler's main AWS service and importing Powertools' Logger,",
        "plus httpx when it calls a provider (the table `FLOORS` in local/tidings_local/bench/coldstart.py",
        f"says which, and why). The bar is {HANDLER_BAR:.1f}x the floor with the tracer on.",
        "",
        *_table(
            [
                "handler",
                "floor",
                "import / floor",
                "process / floor",
                "RSS / floor",
                "import ms",
                "floor import ms",
                "process ms",
                "peak RSS MB",
                "X-Ray SDK",
                "network",
            ],
            rows,
        ),
        "",
        f"The floors (the bare interpreter: {bare['process_ms']:.0f} ms from spawn to exit,"
        f" {bare['max_rss_mb']:.1f} MB):",
        "",
        *_table(["floor", "imports", "import ms", "process ms", "peak RSS MB", "floor of"], floor_rows),
        "",
    ]


def _import_costs_section(results: dict[str, Any]) -> list[str]:
    lines = [
        "### Where each handler's import goes",
        "",
        f"The {coldstart.TOP_IMPORTS} largest cumulative costs under each handler's import from one",
        "`python -X importtime` run of the same probe (not one of the timed runs; importtime's own",
        "overhead inflates it). Cumulative means with what the module imports, so entries nest; a module",
        "that is 90% or more of an entry above it is left out. Percentages are of that run's import.",
        "",
    ]
    for entry in results.get("import_costs", []):
        total = entry["total_ms"]
        costs = ", ".join(
            f"`{item['module']}` {item['cumulative_ms']:.0f} ms"
            + (f" ({item['cumulative_ms'] / total:.0%})" if total > 0 else "")
            for item in entry["top"]
        )
        lines.append(f"- **{entry['name']}** ({total:.0f} ms): {costs}")
    return [*lines, ""]


#: Issue 13's bar for sending through a provider: what Tidings' client adds to a handler's import, as a
#: multiple of what the provider's SDK adds (reported, never asserted).
PROVIDER_BAR = 1.0


def _marginal_sides(
    results: dict[str, Any], client: providers.ProviderClient
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
    by_name = {r["name"]: r for r in results.get("provider_marginals", [])}
    sides = [
        by_name.get(n) for n in (client.base_name, client.marginal_tidings_name, client.marginal_sdk_name)
    ]
    base, ours, sdk = sides
    if base is None or ours is None or sdk is None:
        return None
    return base, ours, sdk


def _marginal_ratio(ours: dict[str, Any], sdk: dict[str, Any]) -> str:
    if ours["error"] or sdk["error"] or ours.get("marginal_ms") is None or sdk.get("marginal_ms") is None:
        return "n/a"
    return _ratio(ours["marginal_ms"], sdk["marginal_ms"])


def _marginal_section(results: dict[str, Any]) -> list[str]:
    versions = results.get("sdk_versions_with_layer", {})
    rows = []
    for client in providers.PROVIDERS:
        sides = _marginal_sides(results, client)
        if sides is None:
            continue
        base, ours, sdk = sides
        failed = [f"{side['name']}: {side['error']}" for side in sides if side["error"]]
        version = versions.get(client.sdk_package) or "missing"

        def added(side: dict[str, Any]) -> str:
            value = side.get("marginal_ms")
            return "n/a" if value is None else f"{value:.1f}"

        rows.append(
            [
                client.provider,
                client.function,
                f"`import {client.module}; {providers.HTTP_PATH}`",
                f"`{client.sdk_import}` ({client.sdk_package} {version})",
                _marginal_ratio(ours, sdk),
                added(ours),
                added(sdk),
                f"{base['import_ms']:.0f}",
                f"{ours['max_rss_mb'] - base['max_rss_mb']:+.1f}",
                f"{sdk['max_rss_mb'] - base['max_rss_mb']:+.1f}",
                str(sum(side["network_attempts"] for side in sides))
                + (f" ({'; '.join(failed)})" if failed else ""),
            ]
        )
    return [
        "### In a handler: what sending through the provider adds (issue 13's acceptance)",
        "",
        "What a handler that sends through the provider pays to import the means of sending, Tidings'",
        "client against the official SDK, on the same base: the floor of the function that sends through",
        "it (section 1) and `tidings.observability` (the logger, tracer and settings every handler",
        "imports), in that function's environment (tracer on). Tidings' side then imports the client's",
        "module with its HTTP path (what the factory builds to send); the SDK's side what its users",
        "import to send. Both sides and the base run in one environment holding the layer's packages and",
        "the SDKs (the layer and the `bench` group, `.tools/bench-layer-sdks`), so what the SDK shares",
        "with the layer (urllib3, cryptography's bindings ...) counts as already there, as it would be in",
        "the function. *Adds* is the side minus the base: each process times that last import on its",
        "own, after the base's (the difference of two processes' totals would carry both runs' noise,",
        "on this machine as large as what is measured), the fastest of the same runs as section 1.",
        f"The bar is {PROVIDER_BAR:.1f}x. *Base* is the base's own import; *adds RSS* is each side's",
        "peak above the base's (medians).",
        "",
        *_table(
            [
                "provider",
                "base: floor of",
                "Tidings",
                "SDK",
                "Tidings adds / SDK adds",
                "Tidings adds ms",
                "SDK adds ms",
                "base ms",
                "Tidings adds RSS MB",
                "SDK adds RSS MB",
                "network",
            ],
            rows,
        ),
        "",
    ]


def _providers_section(results: dict[str, Any]) -> list[str]:
    rows_by_name = {r["name"]: r for r in results.get("providers", [])}
    versions = results.get("sdk_versions", {})
    rows = []
    for client in providers.PROVIDERS:
        ours, sending, sdk = (
            rows_by_name.get(n) for n in (client.tidings_name, client.sending_name, client.sdk_name)
        )
        if ours is None or sending is None or sdk is None:
            continue
        failed = [f"{side['name']}: {side['error']}" for side in (ours, sending, sdk) if side["error"]]
        version = versions.get(client.sdk_package) or "missing"
        rows.append(
            [
                client.provider,
                f"`import {client.module}`",
                f"`{client.sdk_import}` ({client.sdk_package} {version})",
                "n/a" if failed else _ratio(ours["import_ms"], sdk["import_ms"]),
                "n/a" if failed else _ratio(sending["import_ms"], sdk["import_ms"]),
                _ratio(ours["max_rss_mb"], sdk["max_rss_mb"]),
                f"{ours['import_ms']:.0f}",
                f"{sending['import_ms']:.0f}",
                f"{sdk['import_ms']:.0f}",
                str(sum(side["network_attempts"] for side in (ours, sending, sdk)))
                + (f" ({'; '.join(failed)})" if failed else ""),
            ]
        )
    return [
        "## 2. Provider clients against the official SDKs",
        "",
        *_marginal_section(results),
        "### On their own",
        "",
        "Importing Tidings' httpx client for one provider against importing that provider's official",
        "SDK the way its users do to send, both in fresh processes of the same base interpreter, probed in",
        "the rounds of section 1 (the fastest of the same runs). Tidings' side runs in the layer's",
        "environment with the environment of the function that sends through it (tracer on); the SDK's",
        "side in an environment holding the SDKs only (the `bench` dependency group, never the layer).",
        "A client's module imports what defines it; what it needs to send (httpx, the logger, the retry",
        "policy: `tidings.providers._http`) comes with the factory that builds it. *With HTTP path* is",
        "the module and that path together, all a process holds once it can send; most of it is the",
        "logger and settings every handler imports anyway (section 1), which is why the comparison that",
        "decides is the one above, on a handler's base.",
        "",
        *_table(
            [
                "provider",
                "Tidings",
                "SDK",
                "import / SDK",
                "with HTTP path / SDK",
                "RSS / SDK",
                "Tidings ms",
                "with HTTP path ms",
                "SDK ms",
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
        "## 3. Resilience overhead (Stripe charge against the local sandbox)",
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
        "## 4. Webhook signature verification per provider",
        "",
        "`tidings.webhooks` verifying one delivery signed by the sandboxes' own signers, in batches of",
        f"{stripe['verifications']}, median of {stripe['repeats']} batches. Verification only: parsing and",
        "processing the event are not included.",
        "",
        *_table(["provider", "scheme", "cost / Stripe", "ms per 1,000"], rows),
        "",
    ]


def _summary(results: dict[str, Any]) -> list[str]:
    floors = _floor_rows(results)
    handlers = _handlers(results)
    rows: list[list[str]] = []
    if handlers:

        def against_floor(r: dict[str, Any]) -> float:
            floor = floors[r["floor"]]["import_ms"]
            return r["import_ms"] / floor if floor > 0 else float("inf")

        heaviest = max(handlers, key=against_floor)
        lightest = min(handlers, key=against_floor)
        above = [r["name"] for r in handlers if against_floor(r) > HANDLER_BAR]
        traced = [r for r in handlers if r.get("xray_loaded")]
        leaky = [r["name"] for r in handlers if r["network_attempts"]]
        failed = [f"{r['name']} ({r['error']})" for r in handlers if r["error"]]
        rows += [
            [
                "cold import, heaviest handler vs its floor",
                f"{heaviest['name']} ({heaviest['floor'].removeprefix('floor: ')})",
                _ratio(heaviest["import_ms"], floors[heaviest["floor"]]["import_ms"]),
            ],
            [
                "cold import, lightest handler vs its floor",
                f"{lightest['name']} ({lightest['floor'].removeprefix('floor: ')})",
                _ratio(lightest["import_ms"], floors[lightest["floor"]]["import_ms"]),
            ],
            [
                f"handlers above {HANDLER_BAR:.1f}x their floor",
                ", ".join(above) or "none",
                f"{len(above)} of {len(handlers)}",
            ],
            [
                "handlers whose import loaded the X-Ray SDK (the tracer's)",
                f"{len(traced)} of {len(handlers)}",
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
    for client in providers.PROVIDERS:
        sides = _marginal_sides(results, client)
        if sides is None:
            continue
        _base, ours, sdk = sides
        rows.append(
            [
                f"issue 13 acceptance (bar {PROVIDER_BAR:.1f}x): import added to its handler by sending"
                f" through {client.provider}, Tidings' client vs the official SDK",
                f"`{client.module}` + `tidings.providers._http` vs `{client.sdk_import}`, each on"
                f" {client.function}'s floor + `tidings.observability`",
                _marginal_ratio(ours, sdk),
            ]
        )
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


def _interpreters(results: dict[str, Any]) -> list[str]:
    found = results.get("interpreters") or {}
    if not found:
        return []
    bases = {info["base_interpreter"] for info in found.values()}
    same = "the same base interpreter" if len(bases) == 1 else "DIFFERENT base interpreters"
    described = "; ".join(f"{role}: `{info['environment']}`" for role, info in found.items())
    return [f"Probes ran in {same} ({', '.join(sorted(bases))}), environments {described}."]


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
        f" ({machine['implementation']}), load average at start {machine.get('load_average')}"
        f" and at the end {results.get('load_average_end')}.",
        *_interpreters(results),
        "",
        *_summary(results),
        *_coldstart_section(results),
        *_import_costs_section(results),
        *_providers_section(results),
        *_resilience_section(results["resilience"]),
        *_webhook_section(results["webhooks"]),
        "## Reading these numbers",
        "",
        "- The machine is shared and small (see above): cold-start times are the fastest of several runs",
        "  and latencies medians, so a noisy neighbour moves them less, and the same run measures every",
        "  side of a ratio, interleaved.",
        "- Cold start here is the import part of Lambda's init phase on this CPU; on Lambda (arm64, the",
        "  function's memory size) absolute times differ, and the runtime's own start is not included.",
        "- The handlers, floors and Tidings' clients on their own run in an environment of the layer's",
        "  packages only (`make bench` builds it from uv.lock): the development environment has packages",
        "  the layer does not, which httpx (rich) and botocore (awscrt) would import and the probes count.",
        "  The in-handler provider comparison adds the SDKs to it (the same lock), nothing else.",
        "- A floor has no tracer: what the Powertools Tracer costs at import (the X-Ray SDK, its",
        "  patching) is in the handler's row, as it is in the function's init phase on Lambda.",
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
