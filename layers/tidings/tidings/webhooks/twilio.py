"""Twilio request signatures (``X-Twilio-Signature``), as Twilio specifies them.

Form bodies: base64(HMAC-SHA1(auth token, URL + each POST parameter's name and value, sorted by name)).
JSON bodies: Twilio adds ``bodySHA256=<hex sha256 of the body>`` to the URL's query, signs the URL alone
(no parameters), and the body must hash to that value.

Twilio asks receivers to validate as its helper libraries do (they are the reference: twilio-python's
``RequestValidator``, compared in tests/contract/test_contract_signature_parity.py), so this module
follows them where they go beyond the written rule:

* the port: the signed URL may or may not carry a port, depending on the product. The URL is tried as
  called, without its port (any port: behind a proxy on :8443 Twilio may sign the URL without it), and
  with the scheme's default port when it has none;
* a parameter repeated with the same value is signed once (the libraries sign each distinct value).

Where this module is stricter than the libraries, on purpose: an empty body, a missing header and a
JSON body without ``bodySHA256`` are refused (there is nothing to verify or to process), and a
signature made with a SharedKey (``X-Twilio-Webhooks-Signature-Settings``, HMAC-SHA256) is not accepted:
the provider secret holds the auth token only, so such a request fails closed (docs/webhooks.md).
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
    """The URL as given, without its port (whatever the port), and with the scheme's default port
    when it has none: the URLs twilio-python's validator tries."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # not a URL, or not a port number: only the URL as given
        return [url]
    netloc = parts.netloc
    variants = [url]
    if port is not None:
        variants.append(urlunsplit(parts._replace(netloc=netloc.rsplit(":", 1)[0])))
    elif parts.scheme in _DEFAULT_PORTS:
        variants.append(urlunsplit(parts._replace(netloc=f"{netloc}:{_DEFAULT_PORTS[parts.scheme]}")))
    return list(dict.fromkeys(variants))


def _expected_signature(token: str, url: str, params: Mapping[str, Sequence[str]]) -> bytes:
    # Each distinct value once, sorted, as Twilio's libraries sign it.
    data = url + "".join(name + value for name in sorted(params) for value in sorted(set(params[name])))
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
    try:
        query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    except ValueError as exc:  # not a URL (a Host header such as "[" makes none)
        raise WebhookSignatureInvalid("malformed_url", provider=PROVIDER) from exc
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
