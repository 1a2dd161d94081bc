"""Signed provider deliveries as API Gateway HTTP API (2.0) events, signed independently of the
verifiers (from the providers' documented schemes and the sandboxes' documented local credentials)."""

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tidings_local.sandboxes import credentials

HOST = "abc123.execute-api.eu-west-1.amazonaws.com"


def http_event(path: str, body: bytes, headers: dict[str, str], query: str = "", base64_body=False) -> dict:
    return {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": HOST, "x-forwarded-proto": "https", **headers},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": HOST,
            "domainPrefix": "abc123",
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "test",
            },
            "requestId": "req-1",
            "routeKey": f"POST {path}",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1767225600000,
        },
        "body": base64.b64encode(body).decode() if base64_body else body.decode(),
        "isBase64Encoded": base64_body,
    }


def stripe_delivery(
    event: dict | bytes,
    secret: str = credentials.STRIPE_WEBHOOK_SECRET,
    at: int | None = None,
    base64_body=False,
) -> dict:
    """A genuinely signed Stripe delivery of ``event`` (a dict as JSON, or the raw bytes as they are)."""
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    t = int(time.time()) if at is None else at
    v1 = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"content-type": "application/json; charset=utf-8", "stripe-signature": f"t={t},v1={v1}"}
    return http_event("/webhooks/stripe", body, headers, base64_body=base64_body)


def stripe_payment_event(
    event_id: str, kind: str, payment_intent_id: str, notification_id: str | None
) -> dict:
    metadata = {"notification_id": notification_id} if notification_id else {}
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "livemode": False,
        "data": {
            "object": {
                "id": payment_intent_id,
                "object": "payment_intent",
                "metadata": metadata,
                "receipt_email": "jane.doe@example.com",
            }
        },
    }


def sendgrid_delivery(
    items: list[dict] | bytes,
    private_key_pem: str = credentials.SENDGRID_WEBHOOK_PRIVATE_KEY_PEM,
    at: int | None = None,
) -> dict:
    body = items if isinstance(items, bytes) else json.dumps(items).encode()
    timestamp = str(int(time.time()) if at is None else at)
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    signature = base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    headers = {
        "content-type": "application/json",
        "x-twilio-email-event-webhook-signature": signature,
        "x-twilio-email-event-webhook-timestamp": timestamp,
    }
    return http_event("/webhooks/sendgrid", body, headers)


def twilio_delivery(
    params: dict[str, str],
    query: str = "",
    token: str = credentials.TWILIO_AUTH_TOKEN,
    signed_url: str | None = None,
) -> dict:
    url = signed_url or f"https://{HOST}/webhooks/twilio" + (f"?{query}" if query else "")
    data = url + "".join(name + params[name] for name in sorted(params))
    signature = base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()
    headers = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature}
    return http_event("/webhooks/twilio", urlencode(params).encode(), headers, query=query)
