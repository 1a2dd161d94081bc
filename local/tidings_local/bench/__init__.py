"""Benchmarks measured in one run and written to docs/benchmarks.md as ratios (``make bench``).

    from tidings_local.bench import Sizes, run
    results = run(Sizes.default())        # {"machine", "coldstart", "resilience", "webhooks", ...}
    from tidings_local.bench.report import render
    markdown = render(results)

Four measurements: cold start per Lambda handler against its floor (coldstart), importing Tidings'
provider clients against the official SDKs, in a handler and on their own (providers), the resilient
provider path against a bare httpx call to a local sandbox (resilience), and webhook signature
verification per provider (webhooks). Everything runs on this machine and on loopback only. No
assertion here is about time: the numbers are reported, never judged.
"""

from __future__ import annotations

import datetime as dt
import json
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

    # Five, not three: a median of three moved a handler's ratio by over 0.5x from one run to the
    # next on 2 busy cores.
    coldstart_runs: int = 5
    requests: int = 200
    warmup: int = 10
    verifications: int = 1000
    verification_repeats: int = 5
    # Logical ids of the functions to probe; empty means every function in the template.
    functions: tuple[str, ...] = field(default_factory=tuple)
    # Providers whose client import is compared with the SDK's; empty means all three.
    providers: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def default(cls) -> Sizes:
        return cls()

    @classmethod
    def tiny(cls, functions: Sequence[str] = (), providers: Sequence[str] = ()) -> Sizes:
        """Enough to check the machinery end to end in seconds (tests)."""
        return cls(
            coldstart_runs=1,
            requests=3,
            warmup=1,
            verifications=10,
            verification_repeats=1,
            functions=tuple(functions),
            providers=tuple(providers),
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


def load_average() -> list[float] | None:
    """How busy the shared machine is (1, 5, 15 minute averages)."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def interpreter_info(python: str) -> dict[str, Any]:
    """Which interpreter a set of probes runs: its environment and the installation it comes from."""
    code = "import json, platform, sys; print(json.dumps([sys.prefix, sys.base_prefix, platform.python_version()]))"  # noqa: E501
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)  # noqa: S603
    prefix, base_prefix, version = json.loads(out.stdout)
    environment = Path(prefix)
    if environment.is_relative_to(PROJECT_ROOT):  # the report names the project's own folders relatively
        environment = environment.relative_to(PROJECT_ROOT)
    return {"environment": str(environment), "base_interpreter": base_prefix, "version": version}


def machine_info(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "commit": _commit(root),
        # How busy the shared machine was when the run started (the end's is in the results).
        "load_average": load_average(),
    }


def run(
    sizes: Sizes | None = None,
    *,
    template_path: Path | None = None,
    layer_python: str = sys.executable,
    sdk_python: str = sys.executable,
    layer_sdk_python: str = sys.executable,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure everything once and return plain data (JSON-serialisable) for the report.

    ``layer_python`` runs the handlers, their floors and Tidings' provider clients (``make bench``: an
    environment of the layer's packages only); ``sdk_python`` the official SDKs (the ``bench`` group);
    ``layer_sdk_python`` both sides of the in-handler provider comparison (the layer's packages and the
    ``bench`` group).
    """
    from tidings_local.bench import coldstart, providers, resilience, webhooks

    sizes = sizes or Sizes.default()
    template_path = template_path or PROJECT_ROOT / "template.yaml"
    say = progress or (lambda message: print(message, file=sys.stderr))
    started_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    started = time.perf_counter()
    machine = machine_info(template_path.parent)

    say(f"cold start: {sizes.coldstart_runs} runs per target, handlers, floors and provider clients ...")
    handlers = coldstart.handler_targets(template_path, sizes.functions, python=layer_python)
    clients = providers.targets(
        template_path, sizes.providers, layer_python=layer_python, sdk_python=sdk_python
    )
    marginals = providers.marginal_targets(template_path, sizes.providers, python=layer_sdk_python)
    # One interleaved set of rounds for every side of every ratio.
    measured = coldstart.measure(
        coldstart.baseline_targets(handlers, python=layer_python) + handlers + clients + marginals,
        sizes.coldstart_runs,
    )
    client_names = {target.name for target in clients}
    marginal_names = {target.name for target in marginals}
    cold = [r for r in measured if r.name not in client_names | marginal_names]
    for result in measured:
        if result.error or result.network_attempts:
            say(f"  {result.name}: import error {result.error}, {result.network_attempts} network attempts")
    say("cold start: -X importtime per handler ...")
    import_costs = [coldstart.import_costs(target) for target in handlers]

    say(f"resilience overhead: {sizes.requests} Stripe charges per variant ...")
    latency = resilience.measure(template_path, sizes.requests, sizes.warmup)

    say(f"webhook verification: {sizes.verifications} x {sizes.verification_repeats} per provider ...")
    hooks = webhooks.measure(sizes.verifications, sizes.verification_repeats)

    return {
        "started_at": started_at,
        "duration_seconds": round(time.perf_counter() - started, 1),
        "machine": machine,
        "load_average_end": load_average(),
        "interpreters": {
            "layer": interpreter_info(layer_python),
            "sdks": interpreter_info(sdk_python),
            "layer + sdks": interpreter_info(layer_sdk_python),
        },
        "sdk_versions": providers.sdk_versions(sdk_python),
        "sdk_versions_with_layer": providers.sdk_versions(layer_sdk_python),
        "sizes": asdict(sizes),
        "floors": {name: floor.name for name, floor in coldstart.FLOORS.items()},
        "coldstart": [r.as_dict() for r in cold],
        "import_costs": import_costs,
        "providers": [r.as_dict() for r in measured if r.name in client_names],
        "provider_marginals": [r.as_dict() for r in measured if r.name in marginal_names],
        "resilience": [r.as_dict() for r in latency],
        "webhooks": [r.as_dict() for r in hooks],
    }
