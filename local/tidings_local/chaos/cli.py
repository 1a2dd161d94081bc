"""`tidings chaos`: the chaos matrix on a local system of its own (docs/reliability.md).

tidings chaos                          # the full matrix, 5 notifications per cell, writes docs/reliability.md
tidings chaos --size 20                # bigger batches
tidings chaos --cell stripe:reset --cell sns:outage --no-docs   # a few cells, report on the terminal only

It lives with the local tooling, not with the operator commands: it starts and faults a local system
(sandboxes, moto, the local Lambda runtime), which a deployed stack has no levers for.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

DOCS = Path("docs/reliability.md")


def register(subparsers: argparse._SubParsersAction) -> None:
    chaos = subparsers.add_parser(
        "chaos", help="run the chaos matrix on a local system (docs/reliability.md)"
    )
    chaos.add_argument("--size", type=int, default=5, help="notifications per cell (default 5)")
    chaos.add_argument(
        "--cell", action="append", default=None, metavar="PROVIDER:FAULT", help="only these cells"
    )
    chaos.add_argument("--docs", type=Path, default=DOCS, help=f"where to write the report (default {DOCS})")
    chaos.add_argument("--no-docs", action="store_true", help="print the table only")
    chaos.add_argument(
        "--logs",
        type=Path,
        default=Path(".local-state/chaos-functions.log"),
        help="function logs go here (default .local-state/chaos-functions.log)",
    )
    chaos.set_defaults(func=_chaos)


def _chaos(args: argparse.Namespace) -> int:
    from tidings_local.chaos import matrix, report
    from tidings_local.chaos.runner import Rig, run_matrix
    from tidings_ops.target import OperatorError

    if args.size < 1:
        raise OperatorError("--size must be at least 1")
    try:
        cells = matrix.select(args.cell)
    except KeyError as exc:
        raise OperatorError(str(exc.args[0])) from None
    args.logs.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def progress(line: str) -> None:
        print(f"{time.monotonic() - started:7.1f}s  {line}", file=sys.stderr, flush=True)

    with args.logs.open("w") as logs:

        def sink(logical_id: str, line: str) -> None:
            logs.write(f"[{logical_id}] {line}\n")

        # The state machine interpreter logs every failed state (the faults' own effect) at ERROR.
        interpreter = logging.getLogger("moto.stepfunctions")
        interpreter.handlers = [logging.StreamHandler(logs)]
        interpreter.propagate = False
        progress("starting the local system")
        with Rig.own_system(log_sink=sink) as rig:
            results = run_matrix(rig, cells, args.size, progress)
    seconds = time.monotonic() - started
    print(report.table(results))
    print(
        f"\n{sum(r.ok for r in results if r.cell.applies)} of {sum(r.cell.applies for r in results)} "
        f"cells pass, {seconds:.0f} s"
    )
    if not args.no_docs:
        command = (
            "make chaos" if not args.cell and args.size == 5 else "tidings chaos " + " ".join(sys.argv[2:])
        )
        report.write(args.docs, report.markdown(results, args.size, seconds, command))
        print(f"wrote {args.docs}")
    return 0 if all(r.ok for r in results if r.cell.applies) else 1
