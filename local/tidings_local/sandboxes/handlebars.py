"""The Handlebars SendGrid renders its dynamic templates with, as far as the sandbox needs it.

``{{path}}`` (escaped as Handlebars escapes: ``& < > " ' ` =``), ``{{{path}}}`` (raw), ``{{#each path}}``,
``{{#if path}}``, ``{{#unless path}}``, ``{{else}}``, their closing tags and ``{{! comments}}``; paths are
``a.b``, ``this``, ``this.a`` and ``@root.a``. A block tag alone on its line takes the line with it
(Handlebars' standalone rule). Anything else is a template error, as SendGrid refuses to render it.
"""

from __future__ import annotations

import re
from typing import Any

_TAG = re.compile(r"\{\{\{\s*([^}]+?)\s*\}\}\}|\{\{(!--.*?--|![^}]*|[#/]?[^}]*?)\}\}", re.DOTALL)
_ESCAPES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "'": "&#x27;",
    "`": "&#x60;",
    "=": "&#x3D;",
}
_BLOCK_HELPERS = ("each", "if", "unless")


class HandlebarsError(ValueError):
    pass


def escape(value: str) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in value)


def render(source: str, data: dict[str, Any]) -> str:
    tree, _ = _parse(_tokens(source), 0, None)
    return _render(tree, data, data)


def _tokens(source: str) -> list[tuple[str, str]]:
    """("text", s), ("raw", path), ("var", path), ("open", "each path"), ("else", ""), ("close", name)."""
    tokens: list[tuple[str, str]] = []
    position = 0
    for match in _TAG.finditer(source):
        text = source[position : match.start()]
        raw, inner = match.group(1), match.group(2)
        if raw is not None:
            kind, value = "raw", raw.strip()
        else:
            inner = inner.strip()
            if inner.startswith("!"):
                kind, value = "comment", ""
            elif inner.startswith("#"):
                kind, value = "open", inner[1:].strip()
            elif inner.startswith("/"):
                kind, value = "close", inner[1:].strip()
            elif inner == "else":
                kind, value = "else", ""
            else:
                kind, value = "var", inner
        if kind in ("open", "close", "else", "comment"):
            # Standalone: the tag alone on its line removes the line's indentation and line break.
            line_start = text.rfind("\n") + 1
            after = source[match.end() :]
            rest = after.split("\n", 1)[0]
            before_blank = text[line_start:].strip() == "" and (line_start > 0 or not tokens or position == 0)
            if before_blank and rest.strip() == "":
                text = text[:line_start]
                skip = len(rest) + (1 if "\n" in after else 0)
                tokens.append(("text", text))
                tokens.append((kind, value))
                position = match.end() + skip
                continue
        tokens.append(("text", text))
        tokens.append((kind, value))
        position = match.end()
    tokens.append(("text", source[position:]))
    return [t for t in tokens if t != ("text", "") and t[0] != "comment"]


def _parse(tokens: list[tuple[str, str]], index: int, closing: str | None) -> tuple[list[Any], int]:
    body: list[Any] = []
    while index < len(tokens):
        kind, value = tokens[index]
        index += 1
        if kind == "open":
            helper, _, argument = value.partition(" ")
            if helper not in _BLOCK_HELPERS or not argument.strip():
                raise HandlebarsError(f"unknown helper {helper}")
            inner, index = _parse(tokens, index, helper)
            otherwise: list[Any] = []
            if index <= len(tokens) and tokens[index - 1][0] == "else":
                otherwise, index = _parse(tokens, index, helper)
            body.append(("block", helper, argument.strip(), inner, otherwise))
        elif kind == "else":
            if closing is None:
                raise HandlebarsError("else outside a block")
            return body, index
        elif kind == "close":
            if value != closing:
                raise HandlebarsError(f"unexpected close {value}")
            return body, index
        else:
            body.append((kind, value))
    if closing is not None:
        raise HandlebarsError(f"unclosed {closing}")
    return body, index


def _lookup(path: str, context: Any, root: dict[str, Any]) -> Any:
    if path == "this":
        return context
    parts = path.split(".")
    if parts[0] == "this":
        parts = parts[1:]
    elif parts[0] == "@root":
        context, parts = root, parts[1:]
    for part in parts:
        context = context.get(part) if isinstance(context, dict) else None
    return context


def _text(value: Any) -> str:
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


def _render(tree: list[Any], context: Any, root: dict[str, Any]) -> str:
    out: list[str] = []
    for node in tree:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] in ("var", "raw"):
            value = _text(_lookup(node[1], context, root))
            out.append(escape(value) if node[0] == "var" else value)
        else:
            _, helper, argument, inner, otherwise = node
            value = _lookup(argument, context, root)
            if helper == "each":
                items = value if isinstance(value, list) else []
                out += [_render(inner, item, root) for item in items] or [_render(otherwise, context, root)]
            else:
                truthy = bool(value) and value != 0
                if helper == "unless":
                    truthy = not truthy
                out.append(_render(inner if truthy else otherwise, context, root))
    return "".join(out)
