"""The matrix as a table (terminal) and as docs/reliability.md, both from the same run's results."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from tidings_local.chaos.matrix import FAULT_TITLES, FAULTS, PROVIDERS
from tidings_local.chaos.runner import CHAOS_SAGA, LAYER_SETTINGS, CellResult


def table(results: Sequence[CellResult]) -> str:
    """Providers as columns, faults as rows; a cell is pass/fail with its counts, or n/a."""
    by_key = {(r.cell.provider, r.cell.fault): r for r in results}
    providers = [p for p in PROVIDERS if any(r.cell.provider == p for r in results)]
    faults = [f for f in FAULTS if any(r.cell.fault == f for r in results)]
    rows = [["fault", *providers]]
    for fault in faults:
        row = [fault]
        for provider in providers:
            result = by_key.get((provider, fault))
            row.append("" if result is None else _terminal_cell(result))
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _terminal_cell(result: CellResult) -> str:
    counts = result.counts
    if not result.cell.applies or not counts:
        return result.label
    short = {"charges": "ch", "emails": "em", "sms": "sms", "refunds": "rf", "parked": "pk"}
    shown = " ".join(f"{counts[k]}{tag}" for k, tag in short.items() if counts.get(k))
    return f"{result.label} [{shown}]"


def machine() -> str:
    cores = os.cpu_count() or 0
    return f"{platform.system()} {platform.machine()}, {cores} cores, Python {platform.python_version()}"


def _md_cell(result: CellResult | None) -> str:
    if result is None:
        return ""
    if not result.cell.applies:
        return "n/a"
    label = result.label
    counts = result.counts
    shown = ", ".join(
        f"{counts[k]} {k}" for k in ("charges", "emails", "sms", "refunds", "parked") if counts.get(k)
    )
    return f"**{label}**" + (f"<br>{shown}" if shown and result.ok else "")


def markdown(results: Sequence[CellResult], size: int, seconds: float, command: str) -> str:
    by_key = {(r.cell.provider, r.cell.fault): r for r in results}
    notifications = sum(r.size for r in results if r.cell.applies)
    ran = [r for r in results if r.cell.applies]
    failed = [r for r in ran if not r.ok]
    lines = [
        "# Reliability: the chaos matrix",
        "",
        f"Written by `{command}` from one run (do not edit by hand; rerun it). "
        "The matrix, its checks and the faults are in `local/tidings_local/chaos/`; the crash tests are "
        "`tests/e2e/test_crash_consistency.py`.",
        "",
        f"- **Run**: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {len(ran)} cells x {size} notifications "
        f"= {notifications} notifications (plus one recovery probe per outage cell), "
        f"{seconds:.0f} s in all",
        f"- **Machine**: {machine()} (shared with other work while it ran; times are not benchmarks)",
        f"- **Result**: {len(ran) - len(failed)} of {len(ran)} cells pass"
        + (f"; failing: {', '.join(r.cell.key for r in failed)}" if failed else ""),
        "",
        "| fault | " + " | ".join(PROVIDERS) + " |",
        "| --- |" + " --- |" * len(PROVIDERS),
    ]
    for fault in FAULTS:
        cells = [_md_cell(by_key.get((provider, fault))) for provider in PROVIDERS]
        lines.append(f"| {FAULT_TITLES[fault]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "A cell is `pass n/n` when every one of its notifications passed every check below, with the",
        "effects the sandboxes counted (charges, e-mails, SMS, refunds, parked messages); `FAIL k/n (check",
        "count)` names the checks that failed and for how many notifications.",
        "",
        "## What each notification must satisfy",
        "",
        "- **final**: exactly one final status (one `RecordOutcome` in its timeline, the execution ended), "
        "and one the cell allows;",
        "- **twice**: no second charge or refund at Stripe; no second e-mail (SendGrid and SES together) "
        "or SMS (Twilio and SNS together), counted by recipient (every notification has its own address "
        "and number) and by the send key the layer attaches;",
        "- **parked**: every dead-lettered channel is on its dead-letter queue with the error that put it "
        "there, a failed refund is on the compensation queue, every status short of delivered says why;",
        "- **attempts**: no state ran more often than its `Retry` allows (read from the deployed "
        "definition), and no provider saw more requests than those runs times the layer's in-call "
        "attempts;",
        "- **timeline**: the payment intent and refund the notification names exist at Stripe and are its "
        "own; a charged status has exactly one succeeded charge; a channel recorded as sent names the one "
        "message its provider holds; a channel recorded as not sent has no message at any provider.",
        "",
        "## The cells",
        "",
    ]
    for result in results:
        cell = result.cell
        if not cell.applies:
            continue
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(result.statuses.items()))
        line = f"- `{cell.key}`: {result.label}, {result.seconds:.0f} s" + (
            f"; {statuses}" if statuses else ""
        )
        if cell.note:
            line += f". {cell.note}"
        lines.append(line)
        for nid, problems in list(result.failures.items())[:3]:
            lines.append(f"  - `{nid}`: " + "; ".join(problems))
        if result.error:
            lines.append(f"  - the cell stopped: {result.error}")
    notes = sorted({r.cell.note for r in results if not r.cell.applies and r.cell.note})
    if notes:
        lines += ["", "Cells marked n/a: " + " ".join(notes) + "."]
    lines += [
        "",
        "## How the faults are made",
        "",
        "- Stripe, SendGrid, Twilio: the sandboxes' own faults on the sending path (`status` 503 and 429 "
        "with `Retry-After: 1`, `hang` past the layer's 2 s HTTP timeout, `reset`, `outage`), one firing "
        "per notification of the batch, or for the whole batch for an outage. After an outage the breaker's "
        "recovery time passes and one more notification must be `delivered` by the primary again.",
        "- SES and SNS: a proxy in front of moto (the functions' `AWS_ENDPOINT_URL_SESV2` / "
        "`AWS_ENDPOINT_URL_SNS`) answers `ServiceUnavailable`, the service's throttling error, holds or "
        "resets the connection, while the primary (SendGrid, Twilio) is down so every notification "
        "reaches the fallback.",
        "- Webhooks: slow and late through a relay that forwards each delivery 1.5 s later (Stripe, "
        "SendGrid); duplicated and out of order, and a storm, by posting the sandbox's recorded, signed "
        "deliveries again (newest first, twice each; five copies of each at once). Stripe's cells use "
        "3-D Secure cards so the webhook is what resumes the saga.",
        "- AWS-side: a proxy in front of the DynamoDB of the function that calls the provider "
        "(`AWS_ENDPOINT_URL_DYNAMODB`) answers `ProvisionedThroughputExceededException` twice per "
        "notification.",
        "- Container killed after the provider accepted: a proxy where the sending function finds its "
        "provider (`*_API_BASE_URL`; for SES and SNS the AWS proxy) lets the send through and, once the "
        "provider answered 2xx, kills the function's busy containers (`Runtime.ExitError`), once per "
        "notification: the known window, measured (see Crash consistency below).",
        "",
        "Saga policy of the run (template parameters): "
        + ", ".join(f"`{k}={v}`" for k, v in CHAOS_SAGA.items() if "Retry" in k or "Redelivery" in k)
        + ". Provider layer: "
        + ", ".join(f"`{k}={v}`" for k, v in LAYER_SETTINGS.items())
        + ".",
        "",
    ]
    return "\n".join(lines)


def write(path: Path, text: str) -> None:
    existing = path.read_text() if path.exists() else ""
    marker = "\n## Crash consistency"
    # The crash-consistency section is written by hand below the generated part: keep it.
    kept = existing[existing.index(marker) :] if marker in existing else ""
    path.write_text(text.rstrip() + "\n" + kept)
