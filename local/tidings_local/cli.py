"""The `tidings` command: local tooling only (never deployed).

Each command group lives beside the code it drives and registers itself here, so the CLI grows with
the system without one module knowing every command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules exposing `register(subparsers)`; each adds one top-level command group.
COMMAND_MODULES = (
    "tidings_local.sandboxes.cli",  # tidings sandbox serve|fault|requests|reset
    "tidings_local.stack.cli",  # tidings local up|invoke|start-api
    "tidings_local.ops.cli",  # tidings dlq list|redrive
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tidings", description="Tidings local tooling")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:  # a real import error inside the module: surface it
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
