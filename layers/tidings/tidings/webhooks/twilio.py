"""Twilio request signatures (``X-Twilio-Signature``), as Twilio specifies them.

Form bodies: base64(HMAC-SHA1(auth token, URL + each POST parameter's name and value, sorted by name)).
JSON bodies: Twilio adds ``bodySHA256=<hex sha256 of the body>`` to the URL's query, signs the URL alone
(no parameters), and the body must hash to that value.

Twilio's port quirk: depending on the product, the signed URL may or may not carry the scheme's default
port (``https://host:443/...``), so both forms are tried, as Twilio's own validators do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qs, urlsplit, urlunsplit

from tidings.webhooks.errors import WebhookSignatureInvalid

PROVIDER = "twilio"
SIGNATURE_HEADER = "x-twilio-signature"
_DEFAULT_PORTS = {"https": 443, "http": 80}


def url_variants(url: str) -> list[str]:
    """The URL as given, without the scheme's default port, and with it."""
    parts = urlsplit(url)
    default_port = _DEFAULT_PORTS.get(parts.scheme)
    host = parts.hostname or ""
    variants = [url]
    if default_port is not None and parts.port in (None, default_port):
        for netloc in (host, f"{host}:{default_port}"):
            variants.append(urlunsplit(parts._replace(netloc=netloc)))
    return list(dict.fromkeys(variants))


def _expected_signature(token: str, url: str, params: Mapping[str, Sequence[str]]) -> bytes:
    data = url + "".join(name + value for name in sorted(params) for value in sorted(params[name]))
    return base64.b64encode(hmac.new(token.encode(), data.encode("utf-8"), hashlib.sha1).digest())


def parse_form(payload: bytes) -> dict[str, list[str]]:
    """Form parameters exactly as sent, blank values kept (they are part of what Twilio signs)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookSignatureInvalid("malformed_body", provider=PROVIDER) from exc
    return parse_qs(text, keep_blank_values=True)


def verify_twilio_signature(
    url: str,
    payload: bytes,
    header: str | None,
    auth_tokens: Sequence[str],
    *,
    content_type: str | None = None,
) -> dict[str, list[str]]:
    """Return the form parameters (empty for a JSON body) if the signature matches; raise otherwise."""
    if not header:
        raise WebhookSignatureInvalid("missing_header", provider=PROVIDER)
    if not payload:
        raise WebhookSignatureInvalid("empty_body", provider=PROVIDER)
    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    if "bodySHA256" in query:
        # The URL carries the body's hash: the body is opaque to the signature, the hash binds it.
        body_hash = hashlib.sha256(payload).hexdigest().encode()
        if not hmac.compare_digest(body_hash, query["bodySHA256"][0].lower().encode()):
            raise WebhookSignatureInvalid("body_hash_mismatch", provider=PROVIDER)
        params: dict[str, list[str]] = {}
    elif content_type and content_type.split(";")[0].strip().lower() == "application/json":
        raise WebhookSignatureInvalid("body_hash_missing", provider=PROVIDER)
    else:
        params = parse_form(payload)
    candidate = header.strip().encode()
    for token in auth_tokens:
        for variant in url_variants(url):
            if hmac.compare_digest(_expected_signature(token, variant, params), candidate):
                return params
    raise WebhookSignatureInvalid("no_matching_signature", provider=PROVIDER)
