"""Which URLs Tidings may call back: https only, to a public host, unless configuration says otherwise.

A callback URL comes from a client (``callback_url`` in a request) or from the stack
(``DefaultCallbackUrl``). It must be ``https://`` with a host name or a public IP address, no user
name or password in it and no fragment. Plain ``http://`` is allowed only to the hosts the
configuration lists (``CALLBACK_HTTP_ALLOWED_HOSTS``, empty unless the local system sets it for its own
receiver), and an IP literal in a private, loopback or link-local range only when it is listed there too,
so a client cannot point Tidings at the function's own network (the instance metadata address...).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Literal
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048

UrlRejection = Literal["not_a_url", "not_https", "credentials_in_url", "fragment_in_url", "private_address"]

_MESSAGES: dict[str, str] = {
    "not_a_url": "callback_url must be an absolute https URL",
    "not_https": "callback_url must use https",
    "credentials_in_url": "callback_url must not carry a user name or password",
    "fragment_in_url": "callback_url must not have a fragment",
    "private_address": "callback_url must not point at a private, loopback or link-local address",
}


class CallbackUrlRefused(ValueError):
    """A callback URL Tidings will not call; ``reason`` is machine-readable, the URL is never repeated."""

    def __init__(self, reason: UrlRejection) -> None:
        super().__init__(_MESSAGES[reason])
        self.reason: UrlRejection = reason
        self.message = _MESSAGES[reason]


def url_shape(url: str) -> str:
    """The checks that need no configuration (the request model's): absolute http(s), a host, no
    credentials, no fragment. Whether plain http is allowed is ``check_callback_url``'s business."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise CallbackUrlRefused("not_a_url") from None
    if parts.scheme not in ("http", "https") or not host or len(url) > MAX_URL_LENGTH:
        raise CallbackUrlRefused("not_a_url")
    if parts.username is not None or parts.password is not None:
        raise CallbackUrlRefused("credentials_in_url")
    if parts.fragment or url.endswith("#"):
        raise CallbackUrlRefused("fragment_in_url")
    return url


def check_callback_url(url: str, http_allowed_hosts: Iterable[str] = ()) -> str:
    """``url`` if Tidings may POST to it, else ``CallbackUrlRefused``."""
    url_shape(url)
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    allowed = {name.strip().lower() for name in http_allowed_hosts if name.strip()}
    if host in allowed:
        return url
    if parts.scheme != "https":
        raise CallbackUrlRefused("not_https")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return url  # a host name
    if not address.is_global:
        raise CallbackUrlRefused("private_address")
    return url


def host_list(value: str | None) -> frozenset[str]:
    """``CALLBACK_HTTP_ALLOWED_HOSTS``: comma-separated host names or addresses."""
    return frozenset(name.strip().lower() for name in (value or "").split(",") if name.strip())
