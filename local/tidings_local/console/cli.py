"""``tidings console``: serve the console for any stack (the running local system by default).

``make run`` starts it beside the local system already; this command serves it on its own, for the
local system from another terminal or for a deployed stack (``--stack-name``, ``--region``): the pages
use the same operator functions as the CLI. Fault switches need the local sandboxes.
"""

from __future__ import annotations

import argparse
import sys

from tidings_ops.target import add_target_options, target_from


def register(subparsers: argparse._SubParsersAction) -> None:
    console = subparsers.add_parser("console", help="the web console (notifications, executions, DLQs)")
    add_target_options(console)
    console.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (0: any free port)")
    console.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    import threading

    from tidings_local.console.server import Console, ConsoleServer
    from tidings_local.sandboxes import SandboxClient
    from tidings_ops.operations import Operations

    target = target_from(args)
    sandboxes = {name: SandboxClient(url) for name, url in target.sandboxes.items()}
    server = ConsoleServer(Console(Operations(target), sandboxes), args.port).start()
    print(f"Tidings console for {target.where}: {server.url}  (Ctrl-C stops it)", file=sys.stderr)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0
