"""The console's HTTP server: server-rendered pages on ``tidings_ops.operations.Operations``.

Pages (all GET, plus two POST forms):

* ``/notifications``         filters (status, channel statuses, order reference, client) and the list
* ``/notifications/<id>``    status, channels, the joined timeline, its chart (``/timeline.svg``)
* ``/executions``            the state machine's executions
* ``/executions/<name>``     the state machine drawn from its ASL with the path coloured, each state's
                             input and output redacted
* ``/dlq``                   dead-letter queues and their messages; ``POST /dlq/<queue>/redrive``
* ``/faults``                the sandboxes' fault switches; ``POST /faults/<sandbox>/<outage|clear>``

Nothing here keeps state of its own: every page asks the stack again.
"""

from __future__ import annotations

import html
import io
import json
import logging
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tidings.notifications.models import ChannelStatus, NotificationStatus
from tidings_ops.target import OperatorError

log = logging.getLogger(__name__)

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#263238}
nav{background:#263238;padding:.6em 1em}nav a{color:#eceff1;margin-right:1.2em;text-decoration:none}
main{padding:1em 1.5em}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border-bottom:1px solid #cfd8dc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#eceff1}code,pre{font:12px ui-monospace,monospace}pre{margin:0;white-space:pre-wrap}
.succeeded,.delivered,.delivered_with_fallback,.sent,.SUCCEEDED{color:#2e7d32}
.retried,.parked,.dead_lettered,.partially_delivered{color:#f9a825}.caught{color:#ef6c00}
.failed,.rejected,.FAILED{color:#c62828}.running,.RUNNING,.accepted{color:#0277bd}
form.inline{display:inline}button{cursor:pointer}.note{background:#e8f5e9;padding:.4em .8em}
.error{background:#ffebee;padding:.4em .8em}
#graph svg,#timeline-picture{width:100%;height:auto;max-width:1400px}
"""
#: The filters' choices ("" is any).
NOTIFICATION_STATUSES = ("", *NotificationStatus)
CHANNEL_STATUSES = ("", *ChannelStatus)


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _queue_name(url: str | None) -> str | None:
    return url.rstrip("/").rsplit("/", 1)[-1] if url else None


def badge(value: Any) -> str:
    return f'<span class="{e(value)}">{e(value)}</span>'


def table(columns: list[str], rows: list[list[str]], *, id_: str = "") -> str:
    head = "".join(f"<th>{e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    ident = f' id="{e(id_)}"' if id_ else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def folded(label: str, value: Any) -> str:
    return f"<details><summary>{e(label)}</summary><pre>{e(json.dumps(value, indent=1))}</pre></details>"


def select(name: str, options: tuple[str, ...], chosen: str) -> str:
    items = "".join(
        f'<option value="{e(o)}"{" selected" if o == chosen else ""}>{e(o or "any")}</option>'
        for o in options
    )
    return f'<label>{e(name)} <select name="{e(name)}">{items}</select></label> '


class Console:
    """The pages, given the operations of one stack and the sandboxes' control clients."""

    def __init__(self, ops: Any, sandboxes: dict[str, Any] | None = None) -> None:
        self.ops = ops
        self.sandboxes = sandboxes or {}

    # --- pages ---------------------------------------------------------------------------------
    def page(self, title: str, body: str) -> str:
        nav = "".join(
            f'<a href="{href}">{label}</a>'
            for href, label in (
                ("/notifications", "Notifications"),
                ("/executions", "Executions"),
                ("/dlq", "Dead-letter queues"),
                ("/faults", "Fault switches"),
            )
        )
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)} · Tidings</title>"
            f"<style>{STYLE}</style></head><body><nav>{nav}</nav><main><h1>{e(title)}</h1>{body}</main>"
            "</body></html>"
        )

    def notifications(self, query: dict[str, str]) -> str:
        filters = {key: query.get(key) or None for key in ("status", "email_status", "sms_status")}
        result = self.ops.list_notifications(
            client=query.get("client") or None,
            order_reference=query.get("order_reference") or None,
            limit=50,
            **filters,
        )
        form = (
            '<form method="get" id="filters">'
            + select("status", NOTIFICATION_STATUSES, query.get("status", ""))
            + select("email_status", CHANNEL_STATUSES, query.get("email_status", ""))
            + select("sms_status", CHANNEL_STATUSES, query.get("sms_status", ""))
            + '<label>order reference <input name="order_reference" '
            + f'value="{e(query.get("order_reference"))}"></label> '
            + f'<label>client <input name="client" value="{e(query.get("client"))}"></label> '
            + "<button>Filter</button></form>"
        )
        rows = [
            [
                f'<a href="/notifications/{e(n["notification_id"])}">{e(n["notification_id"])}</a>',
                e(n["order_reference"]),
                badge(n["status"]),
                self._channel(n, "email"),
                self._channel(n, "sms"),
                e(n["created_at"]),
            ]
            for n in result["items"]
        ]
        listing = table(["id", "order", "status", "e-mail", "sms", "created"], rows, id_="notifications")
        return self.page("Notifications", form + (listing if rows else "<p>None match.</p>"))

    @staticmethod
    def _channel(n: dict[str, Any], name: str) -> str:
        channel = (n.get("channels") or {}).get(name) or {}
        provider = f" ({e(channel['provider'])})" if channel.get("provider") else ""
        return f'<span data-channel="{e(name)}">{badge(channel.get("status"))}{provider}</span>'

    def notification(self, notification_id: str) -> str:
        from tidings_ops.commands import describe

        n = self.ops.notification(notification_id)
        timeline = self.ops.timeline(notification_id)
        facts = table(
            ["field", "value"],
            [
                ["order", e(n["order_reference"])],
                ["status", badge(n["status"]) + f' <span id="status" data-status="{e(n["status"])}"></span>'],
                ["reason", e(n.get("status_reason"))],
                [
                    "customer",
                    e(f"{n['customer'].get('email') or ''} {n['customer'].get('phone') or ''}".strip()),
                ],
                [
                    "payment",
                    e(" ".join(str(n["payment"].get(key)) for key in ("amount", "currency", "status"))),
                ],
                *([name, self._channel(n, name)] for name in n["channels"]),
                ["execution", f'<a href="/executions/{e(notification_id)}">state machine path</a>'],
            ],
            id_="facts",
        )
        entries = [
            [e(entry["order"]), e(entry["at"]), e(entry["source"]), e(entry["actor"]), e(describe(entry))]
            for entry in timeline["entries"]
        ]
        body = (
            facts
            + "<h2>Timeline</h2>"
            + '<img id="timeline-picture" alt="timeline chart" '
            + f'src="/notifications/{e(notification_id)}/timeline.svg">'
            + table(["#", "at", "source", "actor", "what"], entries, id_="timeline")
        )
        return self.page(f"Notification {notification_id}", body)

    def timeline_svg(self, notification_id: str) -> bytes:
        from tidings_ops.picture import draw

        buffer = io.BytesIO()
        draw(self.ops.timeline(notification_id), buffer, "svg")
        return buffer.getvalue()

    def executions(self, query: dict[str, str]) -> str:
        status = query.get("status") or None
        rows = [
            [
                f'<a href="/executions/{e(x["name"])}">{e(x["name"])}</a>',
                badge(x["status"]),
                e(x["started"]),
                e(x["stopped"]),
            ]
            for x in self.ops.executions(status=status, limit=50)
        ]
        form = (
            '<form method="get">'
            + select(
                "status",
                ("", "running", "succeeded", "failed", "timed_out", "aborted"),
                query.get("status", ""),
            )
            + "<button>Filter</button></form>"
        )
        return self.page(
            "Executions", form + table(["name", "status", "started", "stopped"], rows, id_="executions")
        )

    def execution(self, name: str) -> str:
        from tidings_local.console.graph import draw_state_machine

        execution = self.ops.execution(name)
        graph = draw_state_machine(self.ops.definition(), execution["path"])
        path = "".join(
            f'<li class="state {e(step["status"])}" data-state="{e(step["state"])}" '
            f'data-status="{e(step["status"])}">'
            f"{e(step['state'])} — {e(step['status'])}"
            + (f" ({e(', '.join(step['errors']))})" if step["errors"] else "")
            + "</li>"
            for step in execution["path"]
        )
        io_rows = [
            [
                badge(step["status"]) + " " + e(step["state"]),
                folded("input", step.get("input")),
                folded("output", step.get("output")),
            ]
            for step in execution["path"]
        ]
        body = (
            f"<p>{badge(execution['status'])} started {e(execution['started'])}, "
            f'<a href="/notifications/{e(execution["name"])}">the notification</a></p>'
            f'<div id="graph">{graph}</div><h2>Path</h2><ol id="path">{path}</ol>'
            "<h2>Input and output of each state (redacted)</h2>"
            + table(["state", "input", "output"], io_rows, id_="state-data")
        )
        return self.page(f"Execution {execution['name']}", body)

    def dlq(self, query: dict[str, str]) -> str:
        note = f'<p class="note" id="moved">{e(query["moved"])}</p>' if query.get("moved") else ""
        sections = []
        for row in self.ops.dlq.summary():
            messages = self.ops.dlq.peek(row["queue"], 10) if row["messages"] else []
            listing = table(
                ["message", "notification", "error", "code", "tries", "sent"],
                [
                    [
                        e(m["message_id"]),
                        f'<a href="/notifications/{e(m["notification_id"])}">{e(m["notification_id"])}</a>',
                        e(m["error_type"]),
                        e(m["error_code"]),
                        e(m["tries"]),
                        e(m["sent"]),
                    ]
                    for m in messages
                ],
            )
            button = (
                f'<form class="inline" method="post" action="/dlq/{e(row["queue"])}/redrive">'
                f'<button id="redrive-{e(row["queue"])}">Redrive {e(row["queue"])}</button></form>'
            )
            sections.append(
                f'<section id="queue-{e(row["queue"])}"><h2>{e(row["queue"])} ({e(row["logical_id"])}): '
                f'<span class="count">{e(row["messages"])}</span> waiting</h2>{button}'
                f"{listing if messages else ''}</section>"
            )
        return self.page("Dead-letter queues", note + "".join(sections))

    def redrive(self, queue: str) -> str:
        result = self.ops.dlq.redrive(queue)
        # One audit record per redrive, as `tidings dlq redrive` writes it (the operator's IAM identity).
        written = self.ops.record(
            "dlq.redrive",
            "ok",
            target_kind="queue",
            target_id=_queue_name(result["from"]),
            details={"moved": result["moved"], "to": _queue_name(result["to"]), "via": "console"},
        )
        if not written:
            log.warning("the audit record of a console redrive could not be written")
        return f"moved {result['moved']} message(s) from {queue}"

    def faults(self) -> str:
        sections = []
        for name, client in sorted(self.sandboxes.items()):
            current = client.faults()
            listing = (
                ", ".join(f"{f.get('kind')} {f.get('path_prefix') or ''}".strip() for f in current) or "none"
            )
            buttons = "".join(
                f'<form class="inline" method="post" action="/faults/{e(name)}/{action}">'
                f'<button id="{action}-{e(name)}">{label}</button></form> '
                for action, label in (("outage", "Outage on"), ("clear", "Clear faults"))
            )
            sections.append(
                f'<section id="sandbox-{e(name)}"><h2>{e(name)}</h2>'
                f'<p>faults: <span class="faults">{e(listing)}</span></p>{buttons}</section>'
            )
        return self.page("Fault switches", "".join(sections) or "<p>No sandboxes on this stack.</p>")

    def switch(self, name: str, action: str) -> None:
        client = self.sandboxes[name]
        if action == "outage":
            client.inject_fault("outage")
        else:
            client.clear_faults()


def make_handler(console: Console) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            log.debug("console request", extra={"line": args})

        def _send(self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _redirect(self, location: str) -> None:
            self.send_response(303)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _guard(self, action: Callable[[], None]) -> None:
            try:
                action()
            except ConnectionError:
                return  # the browser went away mid-answer
            except (OperatorError, LookupError) as exc:  # includes an unknown queue or notification
                self._send(404, console.page("Not found", f'<p class="error">{e(exc)}</p>').encode())
            except Exception as exc:  # one sentence, never a stack trace in the page
                log.exception("console page failed")
                text = (
                    f'<p class="error">This page failed ({e(type(exc).__name__)}); see the console log.</p>'
                )
                self._send(500, console.page("Error", text).encode())

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
            parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/") if p]

            def route() -> None:
                if not parts:
                    return self._redirect("/notifications")
                if parts == ["notifications"]:
                    return self._send(200, console.notifications(query).encode())
                if len(parts) == 2 and parts[0] == "notifications":
                    return self._send(200, console.notification(parts[1]).encode())
                if len(parts) == 3 and parts[0] == "notifications" and parts[2] == "timeline.svg":
                    return self._send(200, console.timeline_svg(parts[1]), "image/svg+xml")
                if parts == ["executions"]:
                    return self._send(200, console.executions(query).encode())
                if len(parts) == 2 and parts[0] == "executions":
                    return self._send(200, console.execution(parts[1]).encode())
                if parts == ["dlq"]:
                    return self._send(200, console.dlq(query).encode())
                if parts == ["faults"]:
                    return self._send(200, console.faults().encode())
                raise OperatorError(f"There is no page {url.path}.")

            self._guard(route)

        def do_POST(self) -> None:
            parts = [
                urllib.parse.unquote(p)
                for p in urllib.parse.urlsplit(self.path).path.strip("/").split("/")
                if p
            ]
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(min(length, 65536))

            def route() -> None:
                if len(parts) == 3 and parts[0] == "dlq" and parts[2] == "redrive":
                    moved = console.redrive(parts[1])
                    return self._redirect("/dlq?" + urllib.parse.urlencode({"moved": moved}))
                if len(parts) == 3 and parts[0] == "faults" and parts[1] in console.sandboxes:
                    if parts[2] not in ("outage", "clear"):
                        raise OperatorError(f"Unknown switch {parts[2]}.")
                    console.switch(parts[1], parts[2])
                    return self._redirect("/faults")
                raise OperatorError(f"There is no action {self.path}.")

            self._guard(route)

    return Handler


class ConsoleServer:
    """The console on 127.0.0.1 (``port`` 0: any free port), in a daemon thread."""

    def __init__(self, console: Console, port: int = 0) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(console))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="tidings-console", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> ConsoleServer:
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def for_local_system(system: Any, port: int = 0) -> ConsoleServer:
    """A console on a running ``LocalSystem`` (its moto endpoint, stack name and sandboxes)."""
    from tidings_ops.operations import Operations
    from tidings_ops.target import LOCAL_REGION, Target

    target = Target(
        stack_name=system.stack.template.stack_name,
        region=LOCAL_REGION,
        endpoint_url=system.moto_url,
        local=True,
        api_url=system.api_url,
    )
    sandboxes = {name: sandbox.control for name, sandbox in system.sandboxes.items()}
    return ConsoleServer(Console(Operations(target), sandboxes), port).start()
