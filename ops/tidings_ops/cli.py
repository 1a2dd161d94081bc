"""The `tidings` command.

Operator commands (``tidings_ops.commands``: notifications, executions, errors, dlq, replay;
``tidings_ops.deployment``: secrets, webhooks, doctor) work on a
deployed stack and on the local system alike; the local tooling (``tidings sandbox``, ``tidings local``)
registers itself when ``tidings_local`` is installed beside it. Whatever goes wrong reaches the user as
one sentence, never as a stack trace (``--debug`` shows where).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Modules exposing `register(subparsers)`; each adds top-level command groups.
COMMAND_MODULES = (
    "tidings_ops.commands",  # tidings notifications|executions|errors|dlq|replay
    "tidings_ops.suppressions",  # tidings suppressions list|add|remove
    "tidings_ops.deployment",  # tidings secrets set, webhooks register, doctor
    "tidings_ops.config",  # tidings config show|set|schema
    "tidings_local.sandboxes.cli",  # tidings sandbox serve|fault|requests|reset
    "tidings_local.stack.cli",  # tidings local up|invoke|start-api|token
    "tidings_local.console.cli",  # tidings console
    "tidings_local.cost.cli",  # tidings cost
    "tidings_local.chaos.cli",  # tidings chaos
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tidings", description="Tidings operator and local tooling")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module_name.startswith(exc.name):  # a real import error inside
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from tidings_ops import render
    from tidings_ops.target import OperatorError

    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False)) or os.environ.get("TIDINGS_DEBUG") == "1"
    try:
        return int(args.func(args) or 0)
    except OperatorError as exc:
        render.fail(str(exc))
        return 2
    except KeyboardInterrupt:
        render.fail("interrupted")
        return 130
    except Exception as exc:
        if debug:
            raise
        render.fail(
            f"unexpected {type(exc).__name__} in `{args.command}`; rerun with --debug (or TIDINGS_DEBUG=1) "
            "to see where."
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
