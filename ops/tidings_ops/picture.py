"""``tidings notifications timeline <id> --svg out.svg`` (or ``--png``): the timeline as a Gantt chart.

One lane per actor (saga, Stripe, e-mail: SendGrid/SES, SMS: Twilio/SNS, webhooks, queues). Each state
the execution went through is a bar in its actor's lane from entered to left, coloured by how it went
(succeeded, retried, caught, failed); a provider call is a thin bar as long as its latency, ending in a
mark (a cross when it failed); retries, fallbacks, webhooks and queue hops are marks at their time.
Drawn with matplotlib (Agg: no display needed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

LANES = ("saga", "stripe", "email", "sms", "webhooks", "queues")
LANE_LABELS = {
    "saga": "saga",
    "stripe": "Stripe",
    "email": "SendGrid / SES",
    "sms": "Twilio / SNS",
    "webhooks": "webhooks",
    "queues": "queues",
}
STATE_LANES = {
    "ChargePayment": "stripe",
    "WaitForPaymentAction": "stripe",
    "CancelPayment": "stripe",
    "RefundPayment": "stripe",
    "SendReceiptEmail": "email",
    "SendReceiptEmailViaSes": "email",
    "SendSms": "sms",
    "SendSmsViaSns": "sms",
}
COLOURS = {
    "succeeded": "#2e7d32",
    "retried": "#f9a825",
    "caught": "#ef6c00",
    "failed": "#c62828",
    "running": "#0277bd",
}
FALLBACK_STEPS = frozenset({"SendReceiptEmailViaSes", "SendSmsViaSns"})


def _when(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def lane_of_state(state: str | None) -> str:
    if not state:
        return "saga"
    if state.startswith("Park"):
        return "queues"
    return STATE_LANES.get(state, "saga")


def bars(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each state entered, with its lane, start, end and how it went."""
    found: list[dict[str, Any]] = []
    open_bar: dict[str, Any] | None = None
    for entry in entries:
        kind = entry["kind"]
        if kind == "state_entered":
            open_bar = {
                "state": entry["state"],
                "start": entry["at"],
                "end": entry["at"],
                "status": "running",
            }
            open_bar["lane"] = lane_of_state(entry["state"])
            found.append(open_bar)
        elif open_bar is not None and entry.get("state") == open_bar["state"]:
            if kind == "retry":
                open_bar["status"] = "retried"
            elif kind == "caught":
                open_bar["status"] = "caught"
            elif kind == "state_exited":
                open_bar["end"] = entry["at"]
                if open_bar["status"] == "running":
                    open_bar["status"] = "succeeded"
                open_bar = None
        if kind in ("execution_failed", "execution_timed_out") and open_bar is not None:
            open_bar["status"], open_bar["end"] = "failed", entry["at"]
    return found


def draw(timeline: dict[str, Any], path: Any, fmt: str = "svg") -> None:
    """Write the chart to ``path`` (a file name or a binary file object) as SVG or PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    entries = [e for e in timeline["entries"] if _when(e["at"])]
    times = [_when(e["at"]) for e in entries]
    start = min(times) if times else None
    row = {lane: len(LANES) - 1 - n for n, lane in enumerate(LANES)}
    fig, ax = plt.subplots(figsize=(12, 4.2), dpi=110)

    for bar in bars(entries):
        begin, end = _when(bar["start"]), _when(bar["end"])
        if begin is None or end is None:
            continue
        width = max((end - begin).total_seconds(), 0.02) / 86400  # matplotlib dates are in days
        y = row[bar["lane"]]
        ax.broken_barh(
            [(mdates.date2num(begin), width)],
            (y - 0.32, 0.64),
            facecolors=COLOURS[bar["status"]],
            edgecolors="white",
            alpha=0.85,
        )
        if bar["lane"] != "queues" and width * 86400 > 0.05:
            ax.text(mdates.date2num(begin), y + 0.36, bar["state"], fontsize=6.5, va="bottom", clip_on=True)

    def mark(entry: dict[str, Any], lane: str, marker: str, colour: str, size: float = 55) -> None:
        moment = _when(entry["at"])
        if moment is not None:
            ax.scatter([mdates.date2num(moment)], [row[lane]], marker=marker, s=size, c=colour, zorder=3)

    for entry in entries:
        kind = entry["kind"]
        if kind == "provider_call":
            failed = entry["outcome"] == "failed"
            end, latency = _when(entry["at"]), entry.get("latency_ms")
            if end is not None and isinstance(latency, int | float) and latency > 0:
                lane = entry["actor"] if entry["actor"] in row else "saga"
                ax.broken_barh(
                    [(mdates.date2num(end) - latency / 86_400_000, latency / 86_400_000)],
                    (row[lane] - 0.1, 0.2),
                    facecolors="#b71c1c" if failed else "#1b5e20",
                )
            mark(
                entry,
                entry["actor"] if entry["actor"] in row else "saga",
                "x" if failed else "o",
                "#b71c1c" if failed else "#1b5e20",
            )
            if entry.get("step") in FALLBACK_STEPS:
                mark(entry, entry["actor"], "^", "#6a1b9a", 80)
        elif kind == "retry":
            mark(entry, lane_of_state(entry.get("state")), "$\u21bb$", "#f57f17", 110)
        elif kind == "webhook":
            mark(entry, "webhooks", "D", "#00838f")
        elif entry["source"] == "queue":
            mark(entry, "queues", "s", "#4e342e")
        elif kind in ("final_status", "current_status", "execution_succeeded", "execution_failed"):
            mark(entry, "saga", "*", "#263238", 120)

    ax.set_yticks([row[lane] for lane in LANES], [LANE_LABELS[lane] for lane in LANES])
    ax.set_ylim(-0.7, len(LANES) - 0.3)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    ax.grid(axis="x", alpha=0.3)
    title = (
        f"{timeline['notification_id']}  {timeline.get('order_reference', '')}  {timeline.get('status', '')}"
    )
    if start is not None:
        title += f"  (from {start:%Y-%m-%d %H:%M:%S} UTC)"
    ax.set_title(title, fontsize=9, loc="left")
    legend = [Patch(color=colour, label=status) for status, colour in COLOURS.items()] + [
        Line2D([], [], marker="o", ls="", color="#1b5e20", label="provider call"),
        Line2D([], [], marker="x", ls="", color="#b71c1c", label="failed call"),
        Line2D([], [], marker="^", ls="", color="#6a1b9a", label="fallback"),
        Line2D([], [], marker="D", ls="", color="#00838f", label="webhook"),
        Line2D([], [], marker="s", ls="", color="#4e342e", label="queue hop"),
    ]
    ax.legend(
        handles=legend, fontsize=6.5, ncol=10, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False
    )
    fig.tight_layout()
    fig.savefig(path, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    plt.close(fig)
