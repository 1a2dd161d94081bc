"""The `tidings` command lives in ``tidings_ops.cli`` (operator commands for any stack); the local
tooling's command groups register themselves there. Kept so ``python -m tidings_local.cli`` still works."""

from __future__ import annotations

import sys

from tidings_ops.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
