"""`tidings dlq list|redrive`: inspect and redrive dead-letter queues on AWS or the local system.

tidings dlq list                                  # every dead-letter queue with its message count
tidings dlq list email --peek 5                   # ids and error types of parked receipts
tidings dlq redrive email                         # back through RetryDelivery (SendGrid, then SES)
tidings dlq redrive compensation --max 1 --dry-run

Against the local system: AWS_ENDPOINT_URL=http://127.0.0.1:4566 (or --endpoint-url) and --stack
tidings-local (the default). On AWS: your credentials as usual and --stack tidings-dev.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from tidings_local.ops.dlq import DEAD_LETTER_QUEUES, DeadLetterQueues, QueueNotFound

QUEUE_HELP = f"short name ({', '.join(DEAD_LETTER_QUEUES)}), logical id or queue URL"


def register(subparsers: argparse._SubParsersAction) -> None:
    dlq = subparsers.add_parser("dlq", help="dead-letter queues: list and redrive")
    commands = dlq.add_subparsers(dest="dlq_command", required=True)

    listing = commands.add_parser("list", help="message counts, or the parked messages of one queue")
    _common(listing)
    listing.add_argument("queue", nargs="?", help=QUEUE_HELP)
    listing.add_argument("--peek", type=int, default=10, metavar="N", help="messages to show for one queue")
    listing.set_defaults(func=_list)

    redrive = commands.add_parser("redrive", help="move messages back to the queue they came from")
    _common(redrive)
    redrive.add_argument("queue", help=QUEUE_HELP)
    redrive.add_argument("--to", default=None, help="target queue (default: the one redriving into it)")
    redrive.add_argument("--max", type=int, default=None, dest="limit", help="move at most this many")
    redrive.add_argument("--dry-run", action="store_true", help="show what would move, move nothing")
    redrive.set_defaults(func=_redrive)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", default=os.environ.get("TIDINGS_STACK", "tidings-local"))
    parser.add_argument("--endpoint-url", default=None, help="default: AWS_ENDPOINT_URL, else AWS")
    parser.add_argument("--region", default=None)


def _queues(args: argparse.Namespace) -> DeadLetterQueues:
    import boto3

    client = boto3.client("sqs", endpoint_url=args.endpoint_url, region_name=args.region)
    return DeadLetterQueues(client, args.stack)


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _list(args: argparse.Namespace) -> int:
    queues = _queues(args)
    try:
        _print(queues.peek(args.queue, args.peek) if args.queue else queues.summary())
    except QueueNotFound as exc:
        print(f"tidings dlq: {exc}", file=sys.stderr)
        return 2
    return 0


def _redrive(args: argparse.Namespace) -> int:
    try:
        result = _queues(args).redrive(args.queue, target=args.to, limit=args.limit, dry_run=args.dry_run)
    except QueueNotFound as exc:
        print(f"tidings dlq: {exc}", file=sys.stderr)
        return 2
    _print(result)
    return 0
