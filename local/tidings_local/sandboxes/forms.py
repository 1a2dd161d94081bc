"""Decoding application/x-www-form-urlencoded bodies the way Stripe and Twilio read them."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_BRACKETS = re.compile(r"\[([^\[\]]*)\]")


class FormError(ValueError):
    """A form key the provider would refuse (e.g. ``metadata[a]=1&metadata=2``)."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def decode_flat(body: bytes) -> dict[str, Any]:
    """Twilio's reading: plain keys; a repeated key (``MediaUrl``) becomes a list."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        if key in result:
            existing = result[key]
            result[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            result[key] = value
    return result


def decode_nested(body: bytes | str) -> dict[str, Any]:
    """Stripe's bracket notation: ``metadata[order]=1``, ``expand[]=x``, ``items[0][price]=p``.

    Indexed keys build lists in index order; ``[]`` appends.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        head = key.split("[", 1)[0]
        parts = [head, *_BRACKETS.findall(key[len(head) :])]
        _assign(root, parts, value, key)
    return _listify(root)


def _assign(node: dict[str, Any], parts: list[str], value: str, key: str) -> None:
    for depth, part in enumerate(parts[:-1]):
        following = parts[depth + 1]
        child = node.get(part)
        if child is None:
            child = {} if following != "" else []
            node[part] = child
        if following == "":
            if not isinstance(child, list):
                raise FormError(f"Invalid array: {key}", key)
            if depth + 1 != len(parts) - 1:
                raise FormError(f"Invalid array: {key}", key)
            child.append(value)
            return
        if not isinstance(child, dict):
            raise FormError(f"Invalid hash: {key}", key)
        node = child
    last = parts[-1]
    if isinstance(node.get(last), dict | list):
        raise FormError(f"Invalid hash: {key}", key)
    node[last] = value


def _listify(node: Any) -> Any:
    if isinstance(node, list):
        return [_listify(v) for v in node]
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted
