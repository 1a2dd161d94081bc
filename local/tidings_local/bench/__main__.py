"""``python -m tidings_local.bench``: measure once, write docs/benchmarks.md (and optionally raw JSON)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tidings_local.bench import PROJECT_ROOT, Sizes, run
from tidings_local.bench.report import render


def _absolute(python: str) -> str:
    """A path the probes can run from any folder, the venv's own (a resolved symlink would leave it)."""
    return os.path.abspath(python) if os.sep in python else python


def main(argv: list[str] | None = None) -> int:
    defaults = Sizes.default()
    parser = argparse.ArgumentParser(
        prog="python -m tidings_local.bench", description="Measure Tidings once and write the results."
    )
    parser.add_argument(
        "--output", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.md", help="markdown report"
    )
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--template", type=Path, default=PROJECT_ROOT / "template.yaml")
    parser.add_argument("--coldstart-runs", type=int, default=defaults.coldstart_runs)
    parser.add_argument("--requests", type=int, default=defaults.requests)
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument("--verifications", type=int, default=defaults.verifications)
    parser.add_argument("--verification-repeats", type=int, default=defaults.verification_repeats)
    parser.add_argument(
        "--function", action="append", default=[], help="probe only this logical id (repeatable)"
    )
    parser.add_argument(
        "--provider", action="append", default=[], help="compare only this provider's client (repeatable)"
    )
    parser.add_argument(
        "--layer-python",
        default=sys.executable,
        help="interpreter for the handlers, floors and Tidings' clients (make bench: the layer's packages)",
    )
    parser.add_argument(
        "--sdk-python",
        default=sys.executable,
        help="interpreter for the official SDKs (make bench: the bench group)",
    )
    parser.add_argument(
        "--layer-sdk-python",
        default=sys.executable,
        help="interpreter for the provider imports in a handler, both sides (make bench: the layer's"
        " packages and the bench group)",
    )
    args = parser.parse_args(argv)
    for name in ("coldstart_runs", "requests", "verifications", "verification_repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")

    sizes = Sizes(
        coldstart_runs=args.coldstart_runs,
        requests=args.requests,
        warmup=max(0, args.warmup),
        verifications=args.verifications,
        verification_repeats=args.verification_repeats,
        functions=tuple(args.function),
        providers=tuple(args.provider),
    )
    results = run(
        sizes,
        template_path=args.template.resolve(),
        layer_python=_absolute(args.layer_python),
        sdk_python=_absolute(args.sdk_python),
        layer_sdk_python=_absolute(args.layer_sdk_python),
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output} ({results['duration_seconds']:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
