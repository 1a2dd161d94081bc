"""What a verifier needs from an API Gateway HTTP API (payload 2.0) event: the exact body bytes, the
headers, and the public URL the provider called.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs


@dataclass(frozen=True)
class WebhookRequest:
    """One inbound webhook request, provider-neutral. Header names are lower-case."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    url: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def query(self) -> dict[str, list[str]]:
        _, _, query = self.url.partition("?")
        return parse_qs(query, keep_blank_values=True)

    @classmethod
    def from_http_api_event(cls, event: Mapping[str, Any]) -> WebhookRequest:
        """Build from an HTTP API v2 event; raises ``ValueError`` if the base64 body is corrupt."""
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        return cls(body=raw_body(event), headers=headers, url=public_url(event, headers))


def raw_body(event: Mapping[str, Any]) -> bytes:
    """The bytes the provider sent: API Gateway base64-encodes bodies it does not treat as text."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("body is not valid base64") from exc
    return body.encode("utf-8")


def public_url(event: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> str:
    """Rebuild the URL the provider called (Twilio signs it).

    Scheme from ``x-forwarded-proto`` (API Gateway sets it), host from the Host header (a custom domain
    shows there) or ``requestContext.domainName``. ``rawPath`` already carries a named stage
    (``/dev/webhooks/twilio``); the stage is added only when it is missing, never for ``$default``.
    """
    if headers is None:
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    context = event.get("requestContext") or {}
    scheme = (headers.get("x-forwarded-proto") or "https").split(",")[0].strip()
    host = headers.get("host") or context.get("domainName") or ""
    path = event.get("rawPath") or (context.get("http") or {}).get("path") or "/"
    stage = context.get("stage")
    if stage and stage != "$default" and path != f"/{stage}" and not path.startswith(f"/{stage}/"):
        path = f"/{stage}{path}"
    query = event.get("rawQueryString") or ""
    return f"{scheme}://{host}{path}" + (f"?{query}" if query else "")
