"""Benchmarks measured in one run and written to docs/benchmarks.md as ratios (``make bench``).

    from tidings_local.bench import Sizes, run
    results = run(Sizes.default())        # {"machine", "coldstart", "resilience", "webhooks", ...}
    from tidings_local.bench.report import render
    markdown = render(results)

Three measurements: cold start per Lambda handler (coldstart), the resilient provider path against a
bare httpx call to a local sandbox (resilience), and webhook signature verification per provider
(webhooks). Everything runs on this machine and on loopback only. No assertion here is about time:
the numbers are reported, never judged.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Sizes", "machine_info", "run"]

PROJECT_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Sizes:
    """How much to measure; the defaults keep a full run under 3 minutes on 2 busy cores."""

    coldstart_runs: int = 3
    requests: int = 200
    warmup: int = 10
    verifications: int = 1000
    verification_repeats: int = 5
    # Logical ids of the functions to probe; empty means every function in the template.
    functions: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def default(cls) -> Sizes:
        return cls()

    @classmethod
    def tiny(cls, functions: Sequence[str] = ()) -> Sizes:
        """Enough to check the machinery end to end in seconds (tests)."""
        return cls(
            coldstart_runs=1,
            requests=3,
            warmup=1,
            verifications=10,
            verification_repeats=1,
            functions=tuple(functions),
        )


def _commit(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH, read-only
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def machine_info(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "commit": _commit(root),
        # How busy the shared machine was when the run started (1, 5, 15 minute averages).
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def run(
    sizes: Sizes | None = None,
    *,
    template_path: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure everything once and return plain data (JSON-serialisable) for the report."""
    from tidings_local.bench import coldstart, resilience, webhooks

    sizes = sizes or Sizes.default()
    template_path = template_path or PROJECT_ROOT / "template.yaml"
    say = progress or (lambda message: print(message, file=sys.stderr))
    started_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    started = time.perf_counter()

    say(f"cold start: {sizes.coldstart_runs} runs per target ...")
    targets = coldstart.baseline_targets() + coldstart.handler_targets(template_path, sizes.functions)
    cold = coldstart.measure(targets, sizes.coldstart_runs)
    for result in cold:
        if result.error or result.network_attempts:
            say(f"  {result.name}: import error {result.error}, {result.network_attempts} network attempts")

    say(f"resilience overhead: {sizes.requests} Stripe charges per variant ...")
    latency = resilience.measure(template_path, sizes.requests, sizes.warmup)

    say(f"webhook verification: {sizes.verifications} x {sizes.verification_repeats} per provider ...")
    hooks = webhooks.measure(sizes.verifications, sizes.verification_repeats)

    return {
        "started_at": started_at,
        "duration_seconds": round(time.perf_counter() - started, 1),
        "machine": machine_info(template_path.parent),
        "sizes": asdict(sizes),
        "coldstart": [r.as_dict() for r in cold],
        "resilience": [r.as_dict() for r in latency],
        "webhooks": [r.as_dict() for r in hooks],
    }
