"""``tidings notifications|executions|errors|dlq|replay``: the operator's commands.

They work the same on the local system (default while ``make run`` is up, or ``--local``) and on a
deployed stack (``--stack-name``, ``--region``, ``--profile``; samconfig.toml's stack by default), see
``tidings_ops.target``. Tables by default, ``--json`` for scripts; a problem is one sentence on stderr
and exit status 2, never a stack trace.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tidings.notifications.models import ChannelStatus, NotificationStatus
from tidings_ops import render
from tidings_ops.target import OperatorError, add_target_options, target_from

NOTIFICATION_STATUSES = tuple(NotificationStatus)
CHANNEL_STATUSES = tuple(ChannelStatus)
EXECUTION_STATUSES = ("running", "succeeded", "failed", "timed_out", "aborted")


def _positive(limit: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"must be between 1 and {limit}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError("must be between 0.05 and 3600 seconds")
    return value


def _identifier(text: str) -> str:
    if not text or len(text) > 256 or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError("an id without spaces, at most 256 characters")
    return text


def register(subparsers: argparse._SubParsersAction) -> None:
    # --- notifications --------------------------------------------------------------------------
    notifications = subparsers.add_parser("notifications", help="find, follow and explain notifications")
    commands = notifications.add_subparsers(dest="notifications_command", required=True)

    listing = commands.add_parser("list", help="notifications, newest first, with filters")
    add_target_options(listing)
    listing.add_argument("--client", type=_identifier, help="one client (the JWT subject)")
    listing.add_argument("--status", choices=NOTIFICATION_STATUSES)
    listing.add_argument("--email-status", choices=CHANNEL_STATUSES)
    listing.add_argument("--sms-status", choices=CHANNEL_STATUSES)
    listing.add_argument("--order-reference", type=_identifier)
    listing.add_argument("--bulk-id", type=_identifier)
    listing.add_argument("--since", help="created since: 30m, 1h, 2d or an ISO time")
    listing.add_argument("--until", help="created until: a duration ago or an ISO time")
    listing.add_argument("--limit", type=_positive(100), default=25)
    listing.add_argument("--cursor", help="the next_cursor of the previous page (--json)")
    listing.set_defaults(func=_notifications_list)

    get = commands.add_parser("get", help="one notification's status, channels and payment")
    add_target_options(get)
    get.add_argument("notification_id", type=_identifier)
    get.set_defaults(func=_notifications_get)

    watch = commands.add_parser("watch", help="follow a notification (or a bulk request) to its end")
    add_target_options(watch)
    which = watch.add_mutually_exclusive_group(required=True)
    which.add_argument("notification_id", nargs="?", type=_identifier)
    which.add_argument("--bulk-id", type=_identifier, help="a bulk request: a progress bar to completion")
    watch.add_argument("--timeout", type=_positive(24 * 3600), default=600, help="seconds")
    watch.add_argument("--interval", type=_seconds, default=2.0, help="seconds between looks (default 2)")
    watch.set_defaults(func=_notifications_watch)

    timeline = commands.add_parser("timeline", help="the joined, ordered timeline (and its picture)")
    add_target_options(timeline)
    timeline.add_argument("notification_id", type=_identifier)
    timeline.add_argument("--svg", metavar="FILE", help="draw it as an SVG chart, one lane per actor")
    timeline.add_argument("--png", metavar="FILE", help="draw it as a PNG chart")
    timeline.set_defaults(func=_notifications_timeline)

    # --- executions -----------------------------------------------------------------------------
    executions = subparsers.add_parser("executions", help="the saga's Step Functions executions")
    commands = executions.add_subparsers(dest="executions_command", required=True)
    listing = commands.add_parser("list", help="recent executions, newest first")
    add_target_options(listing)
    listing.add_argument("--status", choices=EXECUTION_STATUSES)
    listing.add_argument("--limit", type=_positive(1000), default=20)
    listing.set_defaults(func=_executions_list)
    show = commands.add_parser("show", help="one execution and the state path it took")
    add_target_options(show)
    show.add_argument("execution", type=_identifier, help="execution name (the notification id) or ARN")
    show.set_defaults(func=_executions_show)

    # --- errors ---------------------------------------------------------------------------------
    errors = subparsers.add_parser("errors", help="failed provider calls grouped by provider, error and code")
    add_target_options(errors)
    errors.add_argument("--since", default="1h", help="30m, 1h, 2d or an ISO time (default 1h)")
    errors.add_argument("--max-executions", type=_positive(10_000), default=500)
    errors.set_defaults(func=_errors)

    # --- dead-letter queues ---------------------------------------------------------------------
    from tidings_ops.dlq import DEAD_LETTER_QUEUES

    queue_help = f"short name ({', '.join(DEAD_LETTER_QUEUES)}), logical id or queue URL"
    dlq = subparsers.add_parser("dlq", help="dead-letter queues: list, show, redrive, purge")
    commands = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = commands.add_parser("list", help="message counts, or the parked messages of one queue")
    add_target_options(listing)
    listing.add_argument("queue", nargs="?", help=queue_help)
    listing.add_argument("--peek", type=_positive(1000), default=10, metavar="N")
    listing.set_defaults(func=_dlq_list)
    show = commands.add_parser("show", help="one parked message, its body redacted")
    add_target_options(show)
    show.add_argument("queue", help=queue_help)
    show.add_argument("message_id", type=_identifier)
    show.set_defaults(func=_dlq_show)
    redrive = commands.add_parser("redrive", help="move messages back to the queue they came from")
    add_target_options(redrive)
    redrive.add_argument("queue", help=queue_help)
    redrive.add_argument("--to", default=None, help="target queue (default: the one redriving into it)")
    redrive.add_argument("--max", type=_positive(100_000), default=None, dest="limit")
    redrive.add_argument("--dry-run", action="store_true", help="show what would move, move nothing")
    redrive.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    redrive.set_defaults(func=_dlq_redrive)
    purge = commands.add_parser("purge", help="delete every message of a dead-letter queue")
    add_target_options(purge)
    purge.add_argument("queue", help=queue_help)
    purge.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(func=_dlq_purge)

    # --- the audit log ---------------------------------------------------------------------------
    audit = subparsers.add_parser(
        "audit", help="who did what, when: by notification, bulk request, or subject and time"
    )
    add_target_options(audit)
    about = audit.add_mutually_exclusive_group(required=True)
    about.add_argument("--notification", type=_identifier, help="every call about it (and its bulk request)")
    about.add_argument("--bulk", type=_identifier, help="every call about a bulk request")
    about.add_argument("--subject", help="what one client (JWT sub) or operator (iam:<id>) did")
    audit.add_argument(
        "--since", default=None, help="30m, 1h, 2d or an ISO time (with --subject; default 1d)"
    )
    audit.add_argument("--until", default=None, help="30m, 1h, 2d ago or an ISO time (with --subject)")
    audit.add_argument("--limit", type=_positive(10_000), default=1000)
    audit.set_defaults(func=_audit)

    # --- replay ---------------------------------------------------------------------------------
    replay = subparsers.add_parser("replay", help="run a stored notification again and show the difference")
    add_target_options(replay)
    replay.add_argument("notification_id", type=_identifier)
    replay.add_argument("--wait", type=_positive(3600), default=120, help="seconds to wait for its end")
    replay.set_defaults(func=_replay)


def _ops(args: argparse.Namespace) -> Any:
    from tidings_ops.operations import Operations

    return Operations(target_from(args))


# --- notifications -----------------------------------------------------------------------------
def _notifications_list(args: argparse.Namespace) -> int:
    from tidings_ops.operations import parse_since

    result = _ops(args).list_notifications(
        client=args.client,
        limit=args.limit,
        cursor=args.cursor,
        status=args.status,
        email_status=args.email_status,
        sms_status=args.sms_status,
        order_reference=args.order_reference,
        bulk_id=args.bulk_id,
        created_since=parse_since(args.since) if args.since else None,
        created_until=parse_since(args.until) if args.until else None,
    )
    if args.json:
        render.emit_json(result)
        return 0
    render.table(
        "Notifications",
        ("id", "order", "status", "e-mail", "sms", "created"),
        (
            (
                item["notification_id"],
                item["order_reference"],
                item["status"],
                _channel(item, "email"),
                _channel(item, "sms"),
                item["created_at"],
            )
            for item in result["items"]
        ),
        empty="none match",
    )
    if result.get("next_cursor"):
        render.say(f"more: --cursor {result['next_cursor']}")
    return 0


def _channel(item: dict[str, Any], name: str) -> str:
    channel = (item.get("channels") or {}).get(name) or {}
    status = channel.get("status") or ""
    return f"{status} ({channel['provider']})" if channel.get("provider") else status


def _notifications_get(args: argparse.Namespace) -> int:
    notification = _ops(args).notification(args.notification_id)
    if args.json:
        render.emit_json(notification)
        return 0
    _print_notification(notification)
    return 0


def _print_notification(n: dict[str, Any]) -> None:
    render.table(
        f"Notification {n['notification_id']}",
        ("field", "value"),
        [
            ("order", n["order_reference"]),
            ("status", n["status"]),
            ("reason", n.get("status_reason") or ""),
            ("created", n["created_at"]),
            ("finished", n.get("finished_at") or ""),
            ("customer", f"{n['customer'].get('email') or ''} {n['customer'].get('phone') or ''}".strip()),
            (
                "payment",
                f"{n['payment'].get('amount')} {n['payment'].get('currency')} {n['payment'].get('status')}",
            ),
            *((f"{name}", _channel(n, name)) for name in n["channels"]),
        ],
    )


def _notifications_watch(args: argparse.Namespace) -> int:
    ops = _ops(args)
    if args.bulk_id:
        return _watch_bulk(ops, args)
    last = None
    for state in ops.watch(args.notification_id, timeout=args.timeout, interval=args.interval):
        last = state
        if args.json:
            render.emit_json({"status": state["status"], "channels": state["channels"]})
        else:
            channels = ", ".join(f"{name} {_channel(state, name)}" for name in state["channels"])
            render.say(f"{state.get('updated_at') or ''}  {render.styled(state['status'])}  {channels}")
    return 0 if last and last["status"] in _final() else 1


def _final() -> frozenset[str]:
    from tidings_ops.operations import FINAL

    return FINAL


def _watch_bulk(ops: Any, args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    final = None
    if args.json:
        for final in ops.watch_bulk(args.bulk_id, timeout=args.timeout, interval=args.interval):
            render.emit_json(final)
    else:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=render.console()) as progress:
            task = progress.add_task(f"bulk {args.bulk_id}", total=None)
            for final in ops.watch_bulk(args.bulk_id, timeout=args.timeout, interval=args.interval):
                progress.update(task, total=final["total"], completed=final["done"])
        if final:
            counts = ", ".join(f"{key} {value}" for key, value in sorted(final["counts"].items()))
            render.say(f"{final['done']} of {final['total']} finished: {counts}")
    return 0 if final and final["done"] == final["total"] else 1


def _notifications_timeline(args: argparse.Namespace) -> int:
    timeline = _ops(args).timeline(args.notification_id)
    for path, fmt in ((args.svg, "svg"), (args.png, "png")):
        if path:
            from tidings_ops.picture import draw

            draw(timeline, path, fmt)
            if not args.json:
                render.say(f"wrote {path}")
    if args.json:
        render.emit_json(timeline)
        return 0
    render.table(
        f"Timeline of {timeline['notification_id']} ({timeline['order_reference']}, {timeline['status']})",
        ("#", "at", "source", "actor", "what"),
        ((e["order"], e["at"], e["source"], e["actor"], describe(e)) for e in timeline["entries"]),
    )
    return 0


def describe(entry: dict[str, Any]) -> str:
    """One line for a timeline entry (shared by the CLI and the console)."""
    kind = entry["kind"]
    if kind == "provider_call":
        text = f"{entry['provider']} {entry['method']} {entry['path']} -> {entry['outcome']}"
        if entry.get("http_status"):
            text += f" HTTP {entry['http_status']}"
        if entry.get("error_type"):
            text += f" {entry['error_type']}"
        if entry.get("code"):
            text += f" code={entry['code']}"
        if entry.get("provider_request_id"):
            text += f" id={entry['provider_request_id']}"
        if entry.get("latency_ms") is not None:
            text += f" {entry['latency_ms']} ms"
        return f"{entry['step']}: {text}"
    if kind in ("state_entered", "state_exited"):
        return f"{kind.replace('_', ' ')} {entry.get('state')}"
    if kind in ("retry", "caught", "task_failed"):
        return f"{kind.replace('_', ' ')} {entry.get('state')}: {entry.get('error')}"
    if kind == "parked":
        return f"parked on {entry.get('queue')} by {entry.get('state')}"
    if kind == "webhook":
        reordered = " (received before the call it reports)" if entry.get("reordered") else ""
        what = f"{entry.get('provider')} webhook {entry.get('event_type')} {entry.get('object_id') or ''}"
        return what + reordered
    if kind in ("final_status", "current_status"):
        waiting = "; ".join(f"{w['channel']} waits in {w['queue']}" for w in entry.get("waiting_in") or [])
        return f"{entry['status']} {entry.get('reason') or ''} {waiting}".strip()
    if entry["source"] == "queue":
        details = entry.get("details") or {}
        queue = f" on {entry['queue']}" if entry.get("queue") else ""
        what = f"{entry.get('step')} {kind}{queue} {details.get('channel', '')}"
        return f"{what} {details.get('error_type', '')}".strip()
    return f"{entry.get('step') or ''} {kind} {entry.get('error') or ''}".strip()


# --- executions ----------------------------------------------------------------------------------
def _executions_list(args: argparse.Namespace) -> int:
    rows = _ops(args).executions(status=args.status, limit=args.limit)
    if args.json:
        render.emit_json(rows)
        return 0
    render.table(
        "Executions",
        ("name", "status", "started", "stopped"),
        ((r["name"], r["status"], r["started"], r["stopped"] or "") for r in rows),
        empty="none",
    )
    return 0


PATH_MARKS = {"succeeded": "✔", "retried": "↻", "caught": "⤳", "failed": "✖", "running": "…"}


def _executions_show(args: argparse.Namespace) -> int:
    execution = _ops(args).execution(args.execution)
    if args.json:
        render.emit_json(execution)
        return 0
    render.say(f"[bold]{execution['name']}[/]  {render.styled(execution['status'])}  {execution['started']}")
    for step in execution["path"]:
        mark = PATH_MARKS.get(step["status"], "?")
        extra = []
        if step["retries"]:
            extra.append(f"retried {step['retries']}x ({', '.join(sorted(set(step['errors'])))})")
        if step.get("caught"):
            extra.append(f"caught {step['caught']}")
        style = render.STATUS_STYLE.get(step["status"], "")
        line = f"  [{style}]{mark} {step['state']}[/]" if style else f"  {mark} {step['state']}"
        render.say(line + (f"  [dim]{'; '.join(extra)}[/]" if extra else ""))
    return 0


# --- errors --------------------------------------------------------------------------------------
def _errors(args: argparse.Namespace) -> int:
    from tidings_ops.operations import parse_since

    since = parse_since(args.since)
    rows = _ops(args).errors(since, max_executions=args.max_executions)
    if args.json:
        render.emit_json(rows)
        return 0
    render.table(
        f"Failures since {since:%Y-%m-%d %H:%M} UTC",
        ("provider", "error", "code", "count", "notifications", "first seen", "last seen", "e.g."),
        (
            (
                r["provider"],
                r["error_type"],
                r["code"] or "",
                r["count"],
                r["notifications"],
                r["first_seen"],
                r["last_seen"],
                r["example"],
            )
            for r in rows
        ),
        empty="none",
    )
    return 0


# --- dead-letter queues --------------------------------------------------------------------------
def _queues(args: argparse.Namespace) -> Any:
    return _ops(args).dlq


def _dlq_list(args: argparse.Namespace) -> int:
    queues = _queues(args)
    with _aws(args, "SQS"):
        if args.queue:
            rows = queues.peek(args.queue, args.peek)
            if args.json:
                render.emit_json(rows)
                return 0
            render.table(
                f"Parked on {args.queue}",
                ("message", "kind", "notification", "error", "code", "tries", "sent"),
                (
                    (
                        m["message_id"],
                        m["kind"],
                        m["notification_id"],
                        m["error_type"],
                        m["error_code"],
                        m["tries"],
                        m["sent"],
                    )
                    for m in rows
                ),
                empty="empty",
            )
            return 0
        rows = queues.summary()
    if args.json:
        render.emit_json(rows)
        return 0
    render.table(
        "Dead-letter queues",
        ("queue", "logical id", "messages", "in flight"),
        ((r["queue"], r["logical_id"], r["messages"], r["in_flight"]) for r in rows),
        empty="none found (is --stack-name right?)",
    )
    return 0


def _dlq_show(args: argparse.Namespace) -> int:
    with _aws(args, "SQS"):
        message = _queues(args).show(args.queue, args.message_id)
    if message is None:
        raise OperatorError(f"No message {args.message_id} among the first 100 on {args.queue}.")
    if args.json:
        render.emit_json(message)
        return 0
    import json

    render.table(
        f"Message {args.message_id}",
        ("field", "value"),
        [(k, v) for k, v in message.items() if k != "body"]
        + [("body", json.dumps(message["body"], indent=1))],
    )
    return 0


def _confirm(args: argparse.Namespace, question: str, *, required: bool) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        if required:
            raise OperatorError(f"{question} Pass --yes to confirm when not at a terminal.")
        return True
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _dlq_redrive(args: argparse.Namespace) -> int:
    queues = _queues(args)
    with _aws(args, "SQS"):
        if not args.dry_run:
            count = queues.count(queues.url(args.queue))
            if count == 0:
                result = {
                    "from": queues.url(args.queue),
                    "to": None,
                    "moved": 0,
                    "dry_run": False,
                    "messages": [],
                }
                return _redrive_result(args, result)
            if not _confirm(args, f"Redrive {count} message(s) from {args.queue}?", required=False):
                render.say("nothing moved")
                return 1
        result = queues.redrive(args.queue, target=args.to, limit=args.limit, dry_run=args.dry_run)
    if not args.dry_run:
        _audited(
            _ops(args),
            "dlq.redrive",
            "ok",
            target_kind="queue",
            target_id=_queue_name(result["from"]),
            details={"moved": result["moved"], "to": _queue_name(result["to"])},
        )
    return _redrive_result(args, result)


def _queue_name(url: str | None) -> str | None:
    return url.rstrip("/").rsplit("/", 1)[-1] if url else None


def _redrive_result(args: argparse.Namespace, result: dict[str, Any]) -> int:
    if args.json:
        render.emit_json(result)
        return 0
    verb = "would move" if result["dry_run"] else "moved"
    render.say(
        f"{verb} {result['moved']} message(s) from {result['from']} to {result['to'] or '(nothing to do)'}"
    )
    for m in result["messages"]:
        render.say(f"  {m['notification_id']}  {m['kind']}  {m['error_type'] or ''}  {m['sent'] or ''}")
    return 0


def _dlq_purge(args: argparse.Namespace) -> int:
    queues = _queues(args)
    with _aws(args, "SQS"):
        url = queues.url(args.queue)
        count = queues.count(url)
        if count and not _confirm(args, f"Delete all {count} message(s) on {args.queue}?", required=True):
            render.say("nothing deleted")
            return 1
        result = queues.purge(args.queue) if count else {"queue": url, "purged": 0, "already_purging": False}
    _audited(
        _ops(args),
        "dlq.purge",
        "ok",
        target_kind="queue",
        target_id=_queue_name(url),
        details={"purged": result["purged"], "already_purging": bool(result["already_purging"])},
    )
    if args.json:
        render.emit_json(result)
    elif result["already_purging"]:
        render.say(f"{args.queue} is being purged already")
    else:
        render.say(f"purged {result['purged']} message(s) from {args.queue}")
    return 0


def _aws(args: argparse.Namespace, what: str) -> Any:
    import contextlib

    from tidings_ops.dlq import QueueNotFound
    from tidings_ops.errors_text import aws_call

    @contextlib.contextmanager
    def guard() -> Any:
        try:
            with aws_call(_ops_target(args), what):
                yield
        except QueueNotFound as exc:
            raise OperatorError(str(exc)) from None

    return guard()


def _ops_target(args: argparse.Namespace) -> Any:
    if not hasattr(args, "_target"):
        args._target = target_from(args)
    return args._target


# --- replay --------------------------------------------------------------------------------------
def _audited(ops: Any, action: str, outcome: str, **fields: Any) -> None:
    """Record an operator action in the audit log; say so (on stderr) when it could not be."""
    if not ops.record(action, outcome, **fields):
        print(f"warning: the audit record of {action} could not be written", file=sys.stderr)


def _audit(args: argparse.Namespace) -> int:
    from tidings_ops.operations import parse_since

    ops = _ops(args)
    since = until = None
    if args.subject:
        since = parse_since(args.since or "1d")
        until = parse_since(args.until) if args.until else None
    rows = ops.audit_records(
        notification_id=args.notification,
        bulk_id=args.bulk,
        subject=args.subject,
        since=since,
        until=until,
        limit=args.limit,
    )
    if args.json:
        render.emit_json(rows)
        return 0
    about = args.notification or args.bulk or args.subject
    render.table(
        f"Audit log: {about}",
        ("at", "subject", "action", "outcome", "status", "code", "target", "request id"),
        (
            (
                r["at"],
                r["subject"],
                r["action"],
                r["outcome"],
                r.get("status") or "",
                r.get("code") or "",
                f"{r['target_kind']} {r['target_id']}" if r.get("target_id") else "",
                r.get("request_id") or "",
            )
            for r in rows
        ),
        empty="no records",
    )
    return 0


def _replay(args: argparse.Namespace) -> int:
    ops = _ops(args)
    result = ops.replay(args.notification_id, wait=args.wait, on_change=None if args.json else render.say)
    _audited(
        ops,
        "replay",
        "ok" if result["finished"] else "failed",
        target_kind="notification",
        target_id=args.notification_id,
        details={"replay": result.get("replay"), "changed": bool(result.get("changed"))},
    )
    if args.json:
        render.emit_json(result)
        return 0 if result["finished"] else 1
    before, after = result["outcome"]["before"], result["outcome"]["after"]
    render.table(
        f"Replay of {result['original']} as {result['replay']}",
        ("", "before", "after"),
        [(key, before[key] or "", after[key] or "") for key in before],
    )
    calls = result["provider_calls"]
    width = max(len(calls["before"]), len(calls["after"]))
    render.table(
        "Provider calls",
        ("before", "after"),
        (
            (
                calls["before"][n] if n < len(calls["before"]) else "",
                calls["after"][n] if n < len(calls["after"]) else "",
            )
            for n in range(width)
        ),
    )
    if not result["changed"]:
        render.say("same outcome")
    return 0 if result["finished"] else 1
