"""Tables for people (rich), JSON for scripts: every command's output goes through here."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

STATUS_STYLE = {
    "ok": "green",
    "warn": "yellow",
    "fail": "red",
    "delivered": "green",
    "delivered_with_fallback": "green",
    "sent": "green",
    "succeeded": "green",
    "SUCCEEDED": "green",
    "partially_delivered": "yellow",
    "parked": "yellow",
    "dead_lettered": "yellow",
    "retried": "yellow",
    "caught": "dark_orange",
    "running": "cyan",
    "RUNNING": "cyan",
    "accepted": "cyan",
    "failed": "red",
    "FAILED": "red",
    "rejected": "red",
    "compensated": "magenta",
    "payment_declined": "magenta",
    "payment_not_taken": "magenta",
}


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # At a terminal, its width; piped into a file or a test, wide rows rather than folded cells.
    width = None if stream.isatty() else 200
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def emit_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=_default)
    sys.stdout.write("\n")


def _default(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def styled(value: Any) -> str:
    from rich.markup import escape

    text = "" if value is None else str(value)
    style = STATUS_STYLE.get(text)
    return f"[{style}]{escape(text)}[/]" if style else escape(text)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "nothing") -> None:
    from rich.table import Table

    rows = list(rows)
    out = console()
    if not rows:
        out.print(f"{title}: {empty}")
        return
    grid = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*(styled(cell) for cell in row))
    out.print(grid)


def say(text: str) -> None:
    console().print(text, soft_wrap=True)


def fail(text: str) -> None:
    from rich.markup import escape

    console(stderr=True).print(f"[red]tidings:[/] {escape(text)}", soft_wrap=True)
