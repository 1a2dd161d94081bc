"""``tidings suppressions list|add|remove``: the suppression list, on a deployed stack or the local system.

The commands go through the same domain as the ``/suppressions`` routes (``tidings.suppressions``), so a
change made here is counted and written to the audit log (as the operator's, ``OperatorAudit``) like
one made over the API. Addresses are
shown masked; ``remove`` takes an entry's id or the channel and address.
"""

from __future__ import annotations

import argparse
import getpass
from typing import Any

from tidings_ops import render
from tidings_ops.target import OperatorError, add_target_options, target_from

CHANNELS = ("email", "sms")


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("suppressions", help="addresses never sent to: list, add, remove")
    commands = group.add_subparsers(dest="suppressions_command", required=True)

    listing = commands.add_parser("list", help="the suppression list (addresses masked)")
    add_target_options(listing)
    listing.add_argument("--channel", choices=CHANNELS)
    listing.add_argument("--limit", type=int, default=50, help="entries per page (1-100, default 50)")
    listing.add_argument("--cursor", help="the next_cursor of the previous page (--json)")
    listing.set_defaults(func=_list)

    add = commands.add_parser("add", help="suppress an address")
    add_target_options(add)
    add.add_argument("channel", choices=CHANNELS)
    add.add_argument("address", help="an e-mail address or an E.164 number")
    add.add_argument("--note", help="why (kept with the entry; no personal data)")
    add.set_defaults(func=_add)

    remove = commands.add_parser("remove", help="lift a suppression")
    add_target_options(remove)
    remove.add_argument("what", nargs="+", help="an entry's suppression_id, or a channel and an address")
    remove.set_defaults(func=_remove)


def _service(args: argparse.Namespace) -> Any:
    from tidings.suppressions.service import SuppressionService
    from tidings.suppressions.store import SuppressionStore
    from tidings_ops.errors_text import aws_call
    from tidings_ops.stack import StackResources

    target = target_from(args)
    with aws_call(target, "DynamoDB"):
        table = target.resource("dynamodb").Table(StackResources(target).physical_id("SuppressionsTable"))
    args._target = target
    return SuppressionService(SuppressionStore(table), audit=OperatorAudit(target))


class OperatorAudit:
    """A change made here goes into the audit log as the operator's (``iam:<unique id>``, like every
    ``tidings`` action), by suppression id, never by address; a record that cannot be written is said
    on stderr and never undoes the change."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def record(self, change: Any) -> None:
        import sys

        from tidings_ops.operations import Operations

        action = f"suppression.{change.action}"
        reason = str(getattr(change.reason, "value", change.reason))
        written = Operations(self.target).record(
            action,
            "ok",
            target_kind="suppression",
            target_id=change.suppression_id,
            details={"channel": str(change.channel), "reason": reason, "source": str(change.source)},
        )
        if not written:
            print(f"warning: the audit record of {action} could not be written", file=sys.stderr)


def _call(args: argparse.Namespace, what: Any) -> Any:
    from tidings.suppressions.store import InvalidCursor
    from tidings_ops.errors_text import aws_call

    try:
        with aws_call(args._target, "DynamoDB"):
            return what()
    except InvalidCursor as exc:
        raise OperatorError(str(exc)) from None


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _rows(entries: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (e.suppression_id, e.channel, e.address, e.reason, e.source, e.created_at, e.added_by or "")
        for e in entries
    ]


COLUMNS = ("suppression_id", "channel", "address", "reason", "source", "created", "added by")


def _list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 100:
        raise OperatorError("--limit must be between 1 and 100.")
    service = _service(args)
    page = _call(args, lambda: service.list(args.channel, args.limit, args.cursor))
    if args.json:
        render.emit_json(page.model_dump(mode="json"))
        return 0
    render.table("Suppressions", COLUMNS, _rows(page.items), empty="none")
    if page.next_cursor:
        render.say(f"more: --cursor {page.next_cursor}")
    return 0


def _add(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from tidings.suppressions.models import SuppressionRequest

    try:
        request = SuppressionRequest(channel=args.channel, address=args.address, note=args.note)
    except ValidationError as exc:
        reasons = "; ".join(str(error["msg"]) for error in exc.errors())
        raise OperatorError(f"Not added: {reasons}.") from None
    service = _service(args)
    view, created = _call(args, lambda: service.add(request, _actor()))
    if args.json:
        render.emit_json(view.model_dump(mode="json") | {"created": created})
        return 0
    render.table("Suppressed" if created else "Already suppressed", COLUMNS, _rows([view]))
    return 0


def _remove(args: argparse.Namespace) -> int:
    from tidings.suppressions.models import suppression_id
    from tidings.suppressions.service import SuppressionNotFound

    if len(args.what) == 1:
        entry_id = args.what[0]
    elif len(args.what) == 2 and args.what[0] in CHANNELS:
        try:
            entry_id = suppression_id(args.what[0], args.what[1])
        except ValueError as exc:
            raise OperatorError(f"Not removed: {exc}.") from None
    else:
        raise OperatorError("Give a suppression_id, or a channel (email, sms) and an address.")
    service = _service(args)
    try:
        view = _call(args, lambda: service.remove(entry_id, _actor()))
    except SuppressionNotFound:
        raise OperatorError(f"No suppression {entry_id}.") from None
    if args.json:
        render.emit_json(view.model_dump(mode="json"))
        return 0
    render.table("Lifted", COLUMNS, _rows([view]))
    return 0
